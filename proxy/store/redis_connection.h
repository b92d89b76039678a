// One hiredis async connection to Redis on an EventLoop: connect and handshake (AUTH, SELECT,
// PING), pipelined commands with a deadline each, failure of every pending command when the
// connection breaks, background reconnection with exponential backoff, and optionally one pub/sub
// subscription that is renewed after every reconnection. It knows nothing of bindings: the
// binding store (redis_binding_store.h) owns two of these ("commands" and "subscriber").
//
// Contract:
//  - Command() calls its handler exactly once: with the reply (never an error reply: those map to
//    UNAVAILABLE for transient Redis errors - LOADING, BUSY, READONLY, NOAUTH, MASTERDOWN,
//    TRYAGAIN, OOM... - and INTERNAL otherwise), or with UNAVAILABLE "redis unavailable: <why>"
//    when the connection is down (at once), breaks, or the command gets no reply in time. The
//    reply is only valid during the handler.
//  - Commands issued while a (re)connection is in progress are queued behind the handshake and
//    answered when it succeeds or fails: they wait at most connect_timeout + op_timeout.
//  - Replies come back in command order, so pending commands form a FIFO watched by one timer.
//    A command that gets no reply within `op_timeout` closes the whole connection (hiredis cannot
//    cancel one command, and a server that stalls one reply stalls them all): every pending
//    command answers UNAVAILABLE "redis unavailable: no reply within <op_timeout>".
//  - After a failure, the next attempt comes after `min_backoff`, doubling up to `max_backoff`;
//    a successful handshake resets it.
//
// Metrics (common/metrics.h, label connection=<name>): pushgate_redis_connected (gauge),
// pushgate_redis_connection_failures_total, pushgate_redis_unavailable_total.
//
// Threading: all methods on the EventLoop's thread; handlers and the message callback run there.
// hiredis callbacks are noexcept trampolines into member functions. Do not destroy the connection
// from inside one of its handlers. Destroying it answers pending commands with UNAVAILABLE.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "proxy/store/event_loop.h"

struct redisAsyncContext;
struct redisReply;

namespace pushgate::proxy {

// Parsed Redis address ("tcp://host:port", "tcp://[v6]:port" or "unix:/path").
struct RedisAddress {
  bool unix_socket = false;
  std::string host;  // or the socket path
  int port = 0;
};
// INVALID_ARGUMENT "redis address \"...\": ..." when malformed.
absl::StatusOr<RedisAddress> ParseRedisAddress(const std::string& address);

class RedisConnection final {
 public:
  // The reply (never an error reply: those become a Status) or why there is none. The reply is
  // freed after the handler returns.
  using ReplyHandler = absl::AnyInvocable<void(absl::StatusOr<const redisReply*>)>;

  struct Options {
    std::string name;  // for logs and the metric label: "commands", "subscriber"
    RedisAddress address;
    std::string username;  // ACL user for AUTH ("" = the default user)
    std::string password;  // AUTH password ("" = no AUTH)
    int db = 0;            // SELECT index (0 = no SELECT)
    absl::Duration connect_timeout = absl::Seconds(2);
    absl::Duration op_timeout = absl::Seconds(1);
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(2);
  };

  // Does not connect yet (see Start). `loop` must outlive the connection.
  RedisConnection(EventLoop& loop, Options options);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Subscriber mode: after each successful (re)connection, SUBSCRIBE `channel`; every message
  // payload goes to `on_message`. Call before Start(); then send no commands on this connection.
  void SetSubscription(std::string channel, std::function<void(absl::string_view)> on_message);

  // Starts connecting in the background.
  void Start() { Connect(); }

  // Sends one command (binary-safe arguments, at most 8). `handler` is called exactly once: later
  // with the reply, or at once with UNAVAILABLE when the connection is down.
  void Command(std::initializer_list<absl::string_view> args, ReplyHandler handler);

  // True once the handshake answered, until the connection breaks.
  bool up() const { return state_ == State::kUp; }
  // True while the subscription (if any) is confirmed by the server.
  bool subscribed() const { return subscribed_; }
  // Why the connection is down (OK when up).
  absl::Status last_error() const { return state_ == State::kUp ? absl::OkStatus() : last_error_; }
  // Time until the next connection attempt, rounded up to whole seconds (at least 1 s).
  absl::Duration RetryAfter() const;

 private:
  enum class State { kDown, kConnecting, kUp };
  struct Pending {
    uint64_t id;
    absl::Time deadline;
    ReplyHandler handler;
  };

  void Send(std::initializer_list<absl::string_view> args, ReplyHandler handler,
            absl::Time deadline);
  void ArmOpTimer(absl::Time deadline);
  void Connect();
  void SendHandshake();
  // Handshake step `what` failed (AUTH, SELECT, PING): the connection goes down.
  ReplyHandler HandshakeStep(absl::string_view what, bool last);
  void OnUp();
  // The connection is gone (or must go): answer everything pending, schedule a reconnection.
  // `free_context`: close it ourselves (false when hiredis is already freeing it).
  void Lost(absl::string_view why, bool free_context);
  void FailAll(const absl::Status& status);
  void OnOpTimer();
  void OnReply(redisAsyncContext* ac, redisReply* reply, uint64_t id);
  void OnSubscriptionReply(redisAsyncContext* ac, redisReply* reply);

  // hiredis callbacks (noexcept trampolines; `ac->data` is the connection, or null once it
  // let go of the context).
  static void ReplyTrampoline(redisAsyncContext* ac, void* reply, void* privdata) noexcept;
  static void SubscriptionTrampoline(redisAsyncContext* ac, void* reply, void* privdata) noexcept;
  static void ConnectTrampoline(const redisAsyncContext* ac, int status) noexcept;
  static void DisconnectTrampoline(const redisAsyncContext* ac, int status) noexcept;

  EventLoop& loop_;
  Options options_;
  State state_ = State::kDown;
  redisAsyncContext* ac_ = nullptr;
  std::deque<Pending> pending_;
  uint64_t next_id_ = 1;
  std::unique_ptr<EventLoop::Timer> op_timer_;
  absl::Time timer_deadline_;  // when op_timer_ fires, if active
  std::unique_ptr<EventLoop::Timer> reconnect_timer_;
  absl::Duration backoff_;
  absl::Time next_attempt_;
  absl::Status last_error_;
  std::string channel_;
  std::function<void(absl::string_view)> on_message_;
  bool subscribed_ = false;
  uint64_t failed_attempts_ = 0;  // connection attempts failed since the last success
  metrics::Counter& losses_;
  metrics::Counter& unavailable_;
  metrics::Gauge& up_gauge_;
};

}  // namespace pushgate::proxy
