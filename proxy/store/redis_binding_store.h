// BindingStore on Redis (hiredis async API, non-blocking on the caller's EventLoop), so several
// proxy replicas share one registrar and a proxy restart loses no binding.
//
// Data model: one string key per AOR, `<key_prefix>aor:<aor>` -> EncodeBindings(live bindings),
// with a TTL (PX) that ends at the latest binding expiry, so Redis drops AORs whose bindings all
// expired. Requires Redis >= 6.2 (SET ... GET, GETDEL).
//  - Fetch: GET, decode, drop bindings expired at `now`.
//  - Replace: one atomic `SET key record PX ttl GET` (or `GETDEL` for an empty set): the old
//    record comes back in the same step, so "added or changed" bindings are computed exactly
//    even when another replica wrote the key just before.
//  - Update and RemoveByPushKey: GET, compute the new set, then a compare-and-set Lua script
//    (EVAL) that writes only if the key still holds what was read; on a concurrent change, read
//    and compute again (a few times, then ABORTED). The proxy registers through Update, so two
//    replicas registering devices of one AOR at the same instant keep both.
//  Replace is a blind overwrite (last writer wins).
//
// Listeners (Subscribe) hear of added/changed bindings from two sources:
//  1. this store's own writes, Replace and Update (before `done`, like the in-memory store), and
//  2. other replicas: after a write that added/changed bindings, the store PUBLISHes
//     `<origin>\n<aor>\n<EncodeBindings(changed)>` on `<key_prefix>registrations`; a second
//     (subscriber) connection receives the other replicas' messages (its own are skipped) and
//     calls the listeners with each binding. Best effort: messages published while this
//     replica's subscriber connection is down are lost (the bindings themselves are not).
//
// Connections: two RedisConnection (proxy/store/redis_connection.h), "commands" and
// "subscriber", connect in the background (Create does not wait). When Redis is down,
// unreachable, refuses AUTH, or an operation gets no reply within `op_timeout`, the connection is
// closed and every pending and every new operation answers at once with UNAVAILABLE
// "redis unavailable: <why>" (never hangs, never silently drops); meanwhile it reconnects with
// exponential backoff (reconnect_min_backoff doubling up to reconnect_max_backoff). Operations
// issued while a (re)connection is in progress are queued on it and answered when it succeeds or
// fails. Redis error replies map to UNAVAILABLE for transient ones (LOADING, BUSY, READONLY,
// NOAUTH, MASTERDOWN, TRYAGAIN, OOM...) and INTERNAL otherwise; a corrupt record -> DATA_LOSS.
//
// An operation that gets no reply within `op_timeout` closes the whole connection (hiredis cannot
// cancel one command; a server that stalls one reply stalls them all): every pending operation
// answers UNAVAILABLE "redis unavailable: no reply within <op_timeout>" and the store reconnects.
// Operations issued while connecting wait at most connect_timeout + op_timeout.
//
// This class holds the binding logic only (keys, records, the compare-and-set script, the
// replica messages); connection, reconnection, pipelining and pub/sub are RedisConnection's.
//
// Metrics (common/metrics.h): pushgate_redis_cas_conflicts_total here; from the connections
// (label connection=commands|subscriber): pushgate_redis_connected (gauge),
// pushgate_redis_connection_failures_total, pushgate_redis_unavailable_total.
//
// Threading: all methods on the EventLoop's thread; callbacks run there. Do not destroy the store
// from inside one of its callbacks. Destroying it answers pending operations with UNAVAILABLE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proxy/store/binding_store.h"
#include "proxy/store/event_loop.h"
#include "proxy/store/redis_connection.h"

namespace pushgate::proxy {

struct RedisStoreConfig {
  // "tcp://host:port" (IPv6 as "tcp://[::1]:6379"; a host name is resolved with getaddrinfo at
  // connect time, which blocks: prefer an IP literal) or "unix:/path/to/redis.sock".
  std::string address = "tcp://127.0.0.1:6379";
  std::string username;                               // ACL user for AUTH ("" = the default user)
  std::string password;                               // AUTH password ("" = no AUTH)
  int db = 0;                                         // SELECT index
  absl::Duration connect_timeout = absl::Seconds(2);  // TCP connect + AUTH/SELECT
  absl::Duration op_timeout = absl::Seconds(1);       // per Redis command
  absl::Duration reconnect_min_backoff = absl::Milliseconds(100);
  absl::Duration reconnect_max_backoff = absl::Seconds(2);
  std::string key_prefix = "pushgate:";
  // Open the subscriber connection that hears other replicas' registrations.
  bool listen_to_other_replicas = true;
};

class RedisBindingStore final : public BindingStore {
 public:
  // Validates `config` (INVALID_ARGUMENT) and starts connecting in the background. `loop` must
  // outlive the store.
  static absl::StatusOr<std::unique_ptr<RedisBindingStore>> Create(EventLoop& loop,
                                                                   RedisStoreConfig config);
  ~RedisBindingStore() override;
  RedisBindingStore(const RedisBindingStore&) = delete;
  RedisBindingStore& operator=(const RedisBindingStore&) = delete;

  void Fetch(const std::string& aor, absl::Time now, FetchDone done) override;
  void Replace(const std::string& aor, std::vector<Binding> bindings, absl::Time now,
               ReplaceDone done) override;
  void Update(const std::string& aor, absl::Time now, Mutation mutate, ReplaceDone done) override;
  void RemoveByPushKey(const std::string& aor, const std::string& push_key, absl::Time now,
                       RemoveDone done) override;
  // Local estimate: bindings written minus bindings overwritten/removed, as seen by this
  // replica's own operations (it does not see expiries in Redis nor other replicas' writes
  // except through the old records it overwrites). Never negative.
  size_t ApproximateSize() const override;
  SubscriptionId Subscribe(Listener listener) override;
  void Unsubscribe(SubscriptionId id) override;

  // True while the command connection is up (for readiness probes). Operations issued while it
  // is false fail at once unless a reconnection attempt is in progress.
  bool connected() const;
  // True while the subscriber connection is subscribed (tests wait for it).
  bool listening() const;
  // Why the command connection is down (OK when connected).
  absl::Status last_error() const;
  // A hint for SIP Retry-After when operations fail: time until the next reconnection attempt,
  // rounded up to whole seconds (at least 1 s).
  absl::Duration RetryAfterHint() const;

  std::string AorKey(const std::string& aor) const { return config_.key_prefix + "aor:" + aor; }
  std::string channel() const { return config_.key_prefix + "registrations"; }

 private:
  RedisBindingStore(EventLoop& loop, RedisStoreConfig config, RedisAddress address);
  void Start();
  void NotifyListeners(const std::string& aor, const std::vector<Binding>& changed);
  void OnMessage(absl::string_view payload);
  // Size estimate, listeners and the PUBLISH after `old` was replaced by `live`.
  void AfterWrite(const std::string& aor, const std::vector<Binding>& old,
                  const std::vector<Binding>& live, absl::Time now);
  // One Update in flight: retried (attempt + 1) when the compare-and-set loses.
  struct UpdateOp {
    std::string aor;
    absl::Time now;
    Mutation mutate;
    int attempt = 0;
    ReplaceDone done;
  };
  // An AOR's record as read: its bytes ("" = no key) and its bindings (expired ones included).
  struct StoredRecord {
    std::string raw;
    std::vector<Binding> bindings;
  };
  // The record in a GET / SET..GET / GETDEL reply; DATA_LOSS when it does not decode.
  static absl::StatusOr<StoredRecord> ReadRecord(const absl::StatusOr<const redisReply*>& reply,
                                                 absl::string_view command, const std::string& aor);
  void UpdateAttempt(UpdateOp op);
  // Mutates what was read and writes it with the compare-and-set script; on a conflict,
  // UpdateAttempt again.
  void WriteIfUnchanged(UpdateOp op, StoredRecord old);

  EventLoop& loop_;
  RedisStoreConfig config_;
  RedisAddress address_;
  std::string origin_;  // random id of this store instance in published messages
  std::unique_ptr<RedisConnection> commands_;
  std::unique_ptr<RedisConnection> subscriber_;
  int64_t size_estimate_ = 0;
  std::map<SubscriptionId, Listener> listeners_;
  SubscriptionId next_subscription_ = 1;
};

}  // namespace pushgate::proxy
