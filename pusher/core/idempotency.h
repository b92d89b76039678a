// Idempotency window for request ids: a retried Send with an id already seen answers the first
// result instead of pushing twice. Bounded in time and size. Thread-safe; time is a parameter.
#pragma once

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

class IdempotencyCache final {
 public:
  enum class State { kNew, kInFlight, kDone };
  struct BeginResult {
    State state = State::kNew;
    v1::PushResult result;  // set when kDone
  };

  // Completed results are kept for `window` after completion; at most `max_entries` ids are
  // remembered (the oldest completed ones are evicted first, then the oldest in-flight ones).
  IdempotencyCache(absl::Duration window, size_t max_entries);
  ~IdempotencyCache();
  IdempotencyCache(const IdempotencyCache&) = delete;
  IdempotencyCache& operator=(const IdempotencyCache&) = delete;

  // kNew: the id is now in flight, the caller sends and must call Complete or Abandon.
  // kInFlight: another call is sending it (waiting for it is the service's business).
  // kDone: the stored result of the first send. An empty id is never recorded (always kNew).
  BeginResult Begin(absl::string_view request_id, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // Stores the result; later Begin() calls with the id answer it until now + window.
  void Complete(absl::string_view request_id, const v1::PushResult& result, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Forgets an in-flight id without a result (the send was cancelled before reaching the
  // provider, or its result is safe to retry, e.g. RETRY_LATER after 429/503), so a retry sends.
  void Abandon(absl::string_view request_id) ABSL_LOCKS_EXCLUDED(mu_);

  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Every push passes here twice, and the cache holds up to max_entries (100,000 by default)
  // mostly cold entries: an entry is one map node (stable address) linked into an intrusive
  // age list, and a result is kept serialized (one allocation instead of one per string field).
  struct Entry {
    const std::string* key = nullptr;  // the map's key of this node
    Entry* older = nullptr;
    Entry* newer = nullptr;
    bool done = false;
    absl::Time expires_at = absl::InfiniteFuture();
    std::string result;  // serialized v1::PushResult once done
  };
  struct AgeList {  // oldest first
    Entry* oldest = nullptr;
    Entry* newest = nullptr;
    void PushNewest(Entry* e);
    void Unlink(Entry* e);
  };
  using Map = absl::node_hash_map<std::string, Entry>;

  void ExpireLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static BeginResult Known(const Entry& entry);  // Begin's answer for an id already there
  Entry* InsertInFlightLocked(absl::string_view request_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration window_;
  const size_t max_entries_;
  mutable absl::Mutex mu_;
  Map entries_ ABSL_GUARDED_BY(mu_);
  AgeList in_flight_ ABSL_GUARDED_BY(mu_);  // by Begin time
  AgeList done_ ABSL_GUARDED_BY(mu_);       // by Complete time
};

}  // namespace pushgate::pusher
