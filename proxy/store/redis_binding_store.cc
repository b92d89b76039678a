#include "proxy/store/redis_binding_store.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <initializer_list>
#include <random>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/metrics.h"

namespace pushgate::proxy {

namespace {

// Redis error prefixes that mean "try again later" rather than "this request is wrong".
constexpr absl::string_view kTransientErrors[] = {"LOADING",     "BUSY",       "READONLY", "NOAUTH",
                                                  "WRONGPASS",   "MASTERDOWN", "TRYAGAIN", "OOM",
                                                  "CLUSTERDOWN", "NOREPLICAS", "MISCONF"};

// Compare-and-set: writes ARGV[2] (with PX ARGV[3], "0" = no TTL; "" = delete) only if the key
// still holds ARGV[1]. Returns 1 when written, 0 when the key changed meanwhile.
constexpr absl::string_view kCasScript = R"lua(
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
elseif ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
)lua";

constexpr int kMaxCasAttempts = 8;

std::shared_ptr<spdlog::logger> Logger() {
  static const std::shared_ptr<spdlog::logger> logger = log::Get("proxy.redis");
  return logger;
}

metrics::Counter& CasConflicts() {
  static metrics::Counter& counter = metrics::Registry::Default().GetCounter(
      "pushgate_redis_cas_conflicts_total",
      "Read-modify-write updates (registrations, dead-token removals) retried because another "
      "writer changed the AOR meanwhile");
  return counter;
}

absl::Status MapErrorReply(absl::string_view message) {
  for (absl::string_view prefix : kTransientErrors) {
    if (absl::StartsWith(message, prefix)) {
      return absl::UnavailableError(absl::StrCat("redis unavailable: ", message));
    }
  }
  return absl::InternalError(absl::StrCat("redis error: ", message));
}

// Milliseconds from `now` until `latest` (at least 1), or "0" for no expiry.
std::string TtlMillis(absl::Time latest, absl::Time now) {
  if (latest == absl::InfiniteFuture()) return "0";
  double ms = std::ceil(absl::ToDoubleMilliseconds(latest - now));
  return absl::StrCat(std::max<int64_t>(1, static_cast<int64_t>(ms)));
}

absl::Time LatestExpiry(const std::vector<Binding>& bindings) {
  absl::Time latest = absl::InfinitePast();
  for (const Binding& b : bindings) latest = std::max(latest, b.expires_at);
  return latest;
}

// hiredis event hooks mapped onto an EventLoop::FdWatch. Owned by hiredis: deleted by the
// `cleanup` hook when the context is freed.
struct Adapter {
  redisAsyncContext* ac = nullptr;
  std::unique_ptr<EventLoop::FdWatch> watch;
  bool read = false;
  bool write = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  static Adapter* From(void* p) { return static_cast<Adapter*>(p); }
  void Update() { watch->SetEvents(read, write); }
  static void AddRead(void* p) noexcept {
    From(p)->read = true;
    From(p)->Update();
  }
  static void DelRead(void* p) noexcept {
    From(p)->read = false;
    From(p)->Update();
  }
  static void AddWrite(void* p) noexcept {
    From(p)->write = true;
    From(p)->Update();
  }
  static void DelWrite(void* p) noexcept {
    From(p)->write = false;
    From(p)->Update();
  }
  static void Cleanup(void* p) noexcept {
    Adapter* self = From(p);
    *self->alive = false;
    delete self;  // unregisters the fd before hiredis closes it
  }

  static void Attach(EventLoop& loop, redisAsyncContext* ac) {
    auto* adapter = new Adapter();
    adapter->ac = ac;
    std::shared_ptr<bool> alive = adapter->alive;
    adapter->watch = loop.WatchFd(ac->c.fd, [ac, alive](bool readable, bool writable) {
      if (readable && *alive) redisAsyncHandleRead(ac);
      // Reading may have freed the context (and this adapter).
      if (writable && *alive) redisAsyncHandleWrite(ac);
    });
    ac->ev.data = adapter;
    ac->ev.addRead = &Adapter::AddRead;
    ac->ev.delRead = &Adapter::DelRead;
    ac->ev.addWrite = &Adapter::AddWrite;
    ac->ev.delWrite = &Adapter::DelWrite;
    ac->ev.cleanup = &Adapter::Cleanup;
  }
};

}  // namespace

namespace redis_internal {

// One hiredis async connection with connect/handshake, per-command timeouts, failure of every
// pending command when it breaks, and background reconnection with backoff. Replies arrive in
// command order, so pending commands form a FIFO with one timer for the oldest deadline.
class Connection {
 public:
  // The reply (never an error reply: those become a Status) or why there is none. The reply
  // is freed after the handler returns.
  using ReplyHandler = absl::AnyInvocable<void(absl::StatusOr<const redisReply*>)>;

  struct Options {
    std::string name;  // for logs: "commands", "subscriber"
    RedisAddress address;
    std::string username;
    std::string password;
    int db = 0;
    absl::Duration connect_timeout;
    absl::Duration op_timeout;
    absl::Duration min_backoff;
    absl::Duration max_backoff;
  };

  Connection(EventLoop& loop, Options options)
      : loop_(loop),
        options_(std::move(options)),
        backoff_(options_.min_backoff),
        losses_(metrics::Registry::Default().GetCounter(
            "pushgate_redis_connection_failures_total",
            "Redis connections lost or failed to establish", {{"connection", options_.name}})),
        unavailable_(metrics::Registry::Default().GetCounter(
            "pushgate_redis_unavailable_total",
            "Redis commands answered UNAVAILABLE (down, timed out, transient error)",
            {{"connection", options_.name}})),
        up_gauge_(metrics::Registry::Default().GetGauge("pushgate_redis_connected",
                                                        "1 while the Redis connection is up",
                                                        {{"connection", options_.name}})) {
    op_timer_ = loop_.CreateTimer([this] { OnOpTimer(); });
    reconnect_timer_ = loop_.CreateTimer([this] { Connect(); });
    last_error_ = absl::UnavailableError("redis unavailable: not connected yet");
  }

  ~Connection() {
    state_ = State::kDown;  // handlers run below must not try to reconnect
    up_gauge_.Set(0);
    op_timer_->Stop();
    reconnect_timer_->Stop();
    if (ac_ != nullptr) {
      ac_->data = nullptr;
      redisAsyncFree(ac_);
      ac_ = nullptr;
    }
    FailAll(absl::UnavailableError("redis unavailable: store destroyed"));
  }

  // Subscriber mode: after each successful (re)connection, SUBSCRIBE `channel`; every message
  // payload goes to `on_message`. Call before Start().
  void SetSubscription(std::string channel, std::function<void(absl::string_view)> on_message) {
    channel_ = std::move(channel);
    on_message_ = std::move(on_message);
  }

  void Start() { Connect(); }

  bool up() const { return state_ == State::kUp; }
  bool subscribed() const { return subscribed_; }
  absl::Status last_error() const { return state_ == State::kUp ? absl::OkStatus() : last_error_; }
  absl::Duration RetryAfter() const {
    absl::Duration wait = absl::Seconds(1);
    if (state_ == State::kDown) {
      wait = std::max(wait, absl::Ceil(next_attempt_ - loop_.Now(), absl::Seconds(1)));
    }
    return wait;
  }

  // Sends one command (binary-safe arguments). `handler` is called exactly once: later with the
  // reply, or at once with UNAVAILABLE when the connection is down.
  void Command(std::initializer_list<absl::string_view> args, ReplyHandler handler) {
    Send(args, std::move(handler), loop_.Now() + options_.op_timeout);
  }

 private:
  enum class State { kDown, kConnecting, kUp };
  struct Pending {
    uint64_t id;
    absl::Time deadline;
    ReplyHandler handler;
  };

  void Send(std::initializer_list<absl::string_view> args, ReplyHandler handler,
            absl::Time deadline) {
    if (state_ == State::kDown || ac_ == nullptr) {
      unavailable_.Inc();
      handler(last_error_);
      return;
    }
    constexpr size_t kMaxArgs = 8;
    if (args.size() > kMaxArgs) {
      handler(absl::InternalError("redis: too many command arguments"));
      return;
    }
    const char* argv[kMaxArgs];
    size_t argvlen[kMaxArgs];
    int argc = 0;
    for (absl::string_view arg : args) {
      argv[argc] = arg.data();
      argvlen[argc] = arg.size();
      ++argc;
    }
    uint64_t id = next_id_++;
    if (redisAsyncCommandArgv(ac_, &Connection::OnReply,
                              reinterpret_cast<void*>(static_cast<uintptr_t>(id)), argc, argv,
                              argvlen) != REDIS_OK) {
      handler(absl::UnavailableError("redis unavailable: connection closing"));
      return;
    }
    pending_.push_back(Pending{id, deadline, std::move(handler)});
    if (!op_timer_->active() || deadline < timer_deadline_) ArmOpTimer(deadline);
  }

  void ArmOpTimer(absl::Time deadline) {
    timer_deadline_ = deadline;
    op_timer_->Start(deadline - loop_.Now());
  }

  void Connect() {
    reconnect_timer_->Stop();
    if (ac_ != nullptr) return;
    state_ = State::kConnecting;
    subscribed_ = false;
    const RedisAddress& a = options_.address;
    redisAsyncContext* ac = a.unix_socket ? redisAsyncConnectUnix(a.host.c_str())
                                          : redisAsyncConnect(a.host.c_str(), a.port);
    if (ac == nullptr) {
      Lost("cannot allocate a connection", false);
      return;
    }
    if (ac->err != 0) {
      std::string why = ac->errstr;
      redisAsyncFree(ac);
      Lost(why, false);
      return;
    }
    if (!a.unix_socket) redisEnableKeepAlive(&ac->c);
    ac_ = ac;
    ac->data = this;
    Adapter::Attach(loop_, ac);
    redisAsyncSetConnectCallback(ac, &Connection::OnConnect);
    redisAsyncSetDisconnectCallback(ac, &Connection::OnDisconnect);

    // Handshake, pipelined before anything else; the connection is up when PING answers.
    absl::Time deadline = loop_.Now() + options_.connect_timeout;
    if (!options_.password.empty()) {
      auto on_auth = [this](absl::StatusOr<const redisReply*> reply) {
        if (!reply.ok() && state_ != State::kDown) {
          Lost(absl::StrCat("AUTH failed: ", reply.status().message()), true);
        }
      };
      if (options_.username.empty()) {
        Send({"AUTH", options_.password}, on_auth, deadline);
      } else {
        Send({"AUTH", options_.username, options_.password}, on_auth, deadline);
      }
    }
    if (options_.db != 0) {
      std::string db = absl::StrCat(options_.db);
      Send(
          {"SELECT", db},
          [this](absl::StatusOr<const redisReply*> reply) {
            if (!reply.ok() && state_ != State::kDown) {
              Lost(absl::StrCat("SELECT failed: ", reply.status().message()), true);
            }
          },
          deadline);
    }
    Send(
        {"PING"},
        [this](absl::StatusOr<const redisReply*> reply) {
          if (!reply.ok()) {
            if (state_ != State::kDown) {
              Lost(absl::StrCat("PING failed: ", reply.status().message()), true);
            }
            return;
          }
          OnUp();
        },
        deadline);
  }

  void OnUp() {
    state_ = State::kUp;
    failed_attempts_ = 0;
    up_gauge_.Set(1);
    backoff_ = options_.min_backoff;
    Logger()->info("redis connected connection={} address={}", options_.name,
                   options_.address.unix_socket
                       ? "unix:" + options_.address.host
                       : absl::StrCat(options_.address.host, ":", options_.address.port));
    if (!channel_.empty()) {
      redisAsyncCommand(ac_, &Connection::OnSubscribeReply, nullptr, "SUBSCRIBE %b",
                        channel_.data(), channel_.size());
    }
  }

  // The connection is gone (or must go): answer everything pending, schedule a reconnection.
  // `free_context`: close it ourselves (false when hiredis is already freeing it).
  void Lost(absl::string_view why, bool free_context) {
    bool was_up = state_ == State::kUp;
    state_ = State::kDown;
    up_gauge_.Set(0);
    losses_.Inc();
    subscribed_ = false;
    last_error_ = absl::UnavailableError(absl::StrCat("redis unavailable: ", why));
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    if (ac != nullptr) {
      ac->data = nullptr;                    // later hiredis callbacks of this context are ignored
      if (free_context) redisAsyncFree(ac);  // deferred by hiredis inside its own callbacks
    }
    op_timer_->Stop();
    next_attempt_ = loop_.Now() + backoff_;
    reconnect_timer_->Start(backoff_);
    if (was_up) {
      Logger()->warn("redis connection lost connection={} reason=\"{}\" retry_in={}", options_.name,
                     why, absl::FormatDuration(backoff_));
    } else if (failed_attempts_ % 20 == 0) {  // the first failure, then one line in 20
      Logger()->warn("redis connect failed connection={} reason=\"{}\" attempts={} retry_in={}",
                     options_.name, why, failed_attempts_ + 1, absl::FormatDuration(backoff_));
    }
    failed_attempts_ = was_up ? 0 : failed_attempts_ + 1;
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    FailAll(last_error_);
  }

  void FailAll(const absl::Status& status) {
    std::deque<Pending> pending = std::move(pending_);
    pending_.clear();
    unavailable_.Inc(pending.size());
    for (Pending& p : pending) p.handler(status);
  }

  void OnOpTimer() {
    if (pending_.empty() || state_ == State::kDown) return;
    absl::Time now = loop_.Now();
    // Deadlines are not monotonic along the FIFO (handshake commands use connect_timeout).
    absl::Time earliest = absl::InfiniteFuture();
    for (const Pending& p : pending_) earliest = std::min(earliest, p.deadline);
    if (earliest <= now) {
      Lost(state_ == State::kConnecting
               ? absl::StrCat("connect timed out after ",
                              absl::FormatDuration(options_.connect_timeout))
               : absl::StrCat("no reply within ", absl::FormatDuration(options_.op_timeout)),
           true);
      return;
    }
    ArmOpTimer(earliest);
  }

  void OnReplyFor(redisAsyncContext* ac, redisReply* reply, uint64_t id) {
    if (reply == nullptr) {
      Lost(ac->errstr != nullptr && ac->errstr[0] != '\0' ? ac->errstr : "connection closed",
           false);
      return;
    }
    if (pending_.empty() || pending_.front().id != id) {
      Lost("reply out of order", true);
      return;
    }
    ReplyHandler handler = std::move(pending_.front().handler);
    pending_.pop_front();
    if (reply->type == REDIS_REPLY_ERROR) {
      handler(MapErrorReply(absl::string_view(reply->str, reply->len)));
    } else {
      handler(static_cast<const redisReply*>(reply));
    }
  }

  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata) noexcept {
    auto* self = static_cast<Connection*>(ac->data);
    if (self == nullptr) return;
    self->OnReplyFor(ac, static_cast<redisReply*>(reply),
                     static_cast<uint64_t>(reinterpret_cast<uintptr_t>(privdata)));
  }

  static void OnSubscribeReply(redisAsyncContext* ac, void* r, void*) noexcept {
    auto* self = static_cast<Connection*>(ac->data);
    if (self == nullptr) return;
    auto* reply = static_cast<redisReply*>(r);
    if (reply == nullptr) {
      self->Lost(ac->errstr != nullptr && ac->errstr[0] != '\0' ? ac->errstr : "connection closed",
                 false);
      return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    absl::string_view kind(reply->element[0]->str, reply->element[0]->len);
    if (kind == "subscribe") {
      self->subscribed_ = true;
    } else if (kind == "message" && reply->element[2]->type == REDIS_REPLY_STRING) {
      self->on_message_(absl::string_view(reply->element[2]->str, reply->element[2]->len));
    }
  }

  static void OnConnect(const redisAsyncContext* ac, int status) noexcept {
    auto* self = static_cast<Connection*>(ac->data);
    if (self == nullptr || status == REDIS_OK) return;  // up once PING answers
    // hiredis frees the context right after this callback.
    self->Lost(ac->errstr != nullptr && ac->errstr[0] != '\0' ? ac->errstr : "connect failed",
               false);
  }

  static void OnDisconnect(const redisAsyncContext* ac, int status) noexcept {
    auto* self = static_cast<Connection*>(ac->data);
    if (self == nullptr) return;
    self->Lost(ac->errstr != nullptr && ac->errstr[0] != '\0' ? ac->errstr : "connection closed",
               false);
  }

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

}  // namespace redis_internal

using redis_internal::Connection;

absl::StatusOr<RedisAddress> ParseRedisAddress(const std::string& address) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("redis address \"", address, "\": ", why));
  };
  RedisAddress out;
  absl::string_view a(address);
  if (absl::ConsumePrefix(&a, "unix:")) {
    absl::ConsumePrefix(&a, "//");  // "unix:///path" too
    if (a.empty() || a[0] != '/') return bad("expected unix:/absolute/path");
    out.unix_socket = true;
    out.host = std::string(a);
    return out;
  }
  if (!absl::ConsumePrefix(&a, "tcp://")) {
    return bad("expected tcp://host:port or unix:/path");
  }
  absl::string_view host;
  absl::string_view port;
  if (absl::ConsumePrefix(&a, "[")) {
    size_t close = a.find(']');
    if (close == absl::string_view::npos) return bad("missing ']'");
    host = a.substr(0, close);
    a.remove_prefix(close + 1);
    if (!absl::ConsumePrefix(&a, ":")) return bad("missing port");
    port = a;
  } else {
    size_t colon = a.rfind(':');
    if (colon == absl::string_view::npos) return bad("missing port");
    host = a.substr(0, colon);
    port = a.substr(colon + 1);
  }
  int port_number = 0;
  if (host.empty()) return bad("empty host");
  if (!absl::SimpleAtoi(port, &port_number) || port_number <= 0 || port_number > 65535) {
    return bad("invalid port");
  }
  out.host = std::string(host);
  out.port = port_number;
  return out;
}

absl::StatusOr<std::unique_ptr<RedisBindingStore>> RedisBindingStore::Create(
    EventLoop& loop, RedisStoreConfig config) {
  auto address = ParseRedisAddress(config.address);
  if (!address.ok()) return address.status();
  if (config.connect_timeout <= absl::ZeroDuration() || config.op_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("redis: connect_timeout and op_timeout must be positive");
  }
  if (config.reconnect_min_backoff <= absl::ZeroDuration() ||
      config.reconnect_max_backoff < config.reconnect_min_backoff) {
    return absl::InvalidArgumentError("redis: reconnect backoff must be positive, min <= max");
  }
  if (config.db < 0) return absl::InvalidArgumentError("redis: db must be >= 0");
  std::unique_ptr<RedisBindingStore> store(
      new RedisBindingStore(loop, std::move(config), *std::move(address)));
  store->Start();
  return store;
}

RedisBindingStore::RedisBindingStore(EventLoop& loop, RedisStoreConfig config, RedisAddress address)
    : loop_(loop), config_(std::move(config)), address_(std::move(address)) {
  std::random_device random;
  char id[17];
  std::snprintf(id, sizeof(id), "%08x%08x", random(), random());
  origin_ = id;
  Connection::Options options;
  options.address = address_;
  options.username = config_.username;
  options.password = config_.password;
  options.db = config_.db;
  options.connect_timeout = config_.connect_timeout;
  options.op_timeout = config_.op_timeout;
  options.min_backoff = config_.reconnect_min_backoff;
  options.max_backoff = config_.reconnect_max_backoff;
  options.name = "commands";
  commands_ = std::make_unique<Connection>(loop_, options);
  if (config_.listen_to_other_replicas) {
    options.name = "subscriber";
    subscriber_ = std::make_unique<Connection>(loop_, options);
    subscriber_->SetSubscription(channel(),
                                 [this](absl::string_view payload) { OnMessage(payload); });
  }
}

RedisBindingStore::~RedisBindingStore() {
  subscriber_.reset();
  commands_.reset();
}

void RedisBindingStore::Start() {
  commands_->Start();
  if (subscriber_) subscriber_->Start();
}

bool RedisBindingStore::connected() const { return commands_->up(); }
bool RedisBindingStore::listening() const { return subscriber_ && subscriber_->subscribed(); }
absl::Status RedisBindingStore::last_error() const { return commands_->last_error(); }
absl::Duration RedisBindingStore::RetryAfterHint() const { return commands_->RetryAfter(); }

size_t RedisBindingStore::ApproximateSize() const {
  return size_estimate_ > 0 ? static_cast<size_t>(size_estimate_) : 0;
}

BindingStore::SubscriptionId RedisBindingStore::Subscribe(Listener listener) {
  SubscriptionId id = next_subscription_++;
  listeners_[id] = std::move(listener);
  return id;
}

void RedisBindingStore::Unsubscribe(SubscriptionId id) { listeners_.erase(id); }

void RedisBindingStore::NotifyListeners(const std::string& aor,
                                        const std::vector<Binding>& changed) {
  if (listeners_.empty()) return;
  std::vector<SubscriptionId> ids;
  ids.reserve(listeners_.size());
  for (const auto& [id, listener] : listeners_) ids.push_back(id);
  for (const Binding& binding : changed) {
    for (SubscriptionId id : ids) {
      auto it = listeners_.find(id);
      if (it == listeners_.end()) continue;  // unsubscribed by an earlier listener
      Listener listener = it->second;        // may unsubscribe itself
      listener(aor, binding);
    }
  }
}

void RedisBindingStore::Fetch(const std::string& aor, absl::Time now, FetchDone done) {
  std::string key = AorKey(aor);
  commands_->Command({"GET", key}, [aor, now, done = std::move(done)](
                                       absl::StatusOr<const redisReply*> reply) mutable {
    if (!reply.ok()) {
      done(reply.status());
      return;
    }
    const redisReply* r = *reply;
    if (r->type == REDIS_REPLY_NIL) {
      done(std::vector<Binding>());
      return;
    }
    if (r->type != REDIS_REPLY_STRING) {
      done(absl::InternalError(absl::StrCat("redis: GET of ", aor, ": unexpected reply")));
      return;
    }
    auto decoded = DecodeBindings(absl::string_view(r->str, r->len), aor);
    if (!decoded.ok()) {
      done(absl::DataLossError(absl::StrCat("redis: ", aor, ": ", decoded.status().message())));
      return;
    }
    std::vector<Binding> live;
    live.reserve(decoded->size());
    for (Binding& b : *decoded) {
      if (!b.expired(now)) live.push_back(std::move(b));
    }
    done(std::move(live));
  });
}

void RedisBindingStore::Replace(const std::string& aor, std::vector<Binding> bindings,
                                absl::Time now, ReplaceDone done) {
  std::vector<Binding> live;
  live.reserve(bindings.size());
  for (Binding& b : bindings) {
    if (b.expired(now)) continue;
    b.aor = aor;
    live.push_back(std::move(b));
  }
  std::string key = AorKey(aor);
  auto on_reply = [this, aor, now, live,
                   done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
    if (!reply.ok()) {
      done(reply.status());
      return;
    }
    const redisReply* r = *reply;
    std::vector<Binding> old;
    if (r->type == REDIS_REPLY_STRING) {
      auto decoded = DecodeBindings(absl::string_view(r->str, r->len), aor);
      if (decoded.ok()) {
        old = *std::move(decoded);
      } else {
        Logger()->warn("redis: overwrote a corrupt record aor={} error=\"{}\"", aor,
                       decoded.status().message());
      }
    } else if (r->type != REDIS_REPLY_NIL) {
      done(absl::InternalError(absl::StrCat("redis: SET of ", aor, ": unexpected reply")));
      return;
    }
    AfterWrite(aor, old, live, now);
    done(absl::OkStatus());
  };
  if (live.empty()) {
    commands_->Command({"GETDEL", key}, std::move(on_reply));
    return;
  }
  std::string record = EncodeBindings(live);
  std::string ttl = TtlMillis(LatestExpiry(live), now);
  if (ttl == "0") {
    commands_->Command({"SET", key, record, "GET"}, std::move(on_reply));
  } else {
    commands_->Command({"SET", key, record, "PX", ttl, "GET"}, std::move(on_reply));
  }
}

void RedisBindingStore::AfterWrite(const std::string& aor, const std::vector<Binding>& old,
                                   const std::vector<Binding>& live, absl::Time now) {
  size_estimate_ += static_cast<int64_t>(live.size()) - static_cast<int64_t>(old.size());
  std::vector<Binding> changed;
  for (const Binding& b : live) {
    bool same = std::any_of(old.begin(), old.end(),
                            [&](const Binding& o) { return !o.expired(now) && o == b; });
    if (!same) changed.push_back(b);
  }
  if (changed.empty()) return;
  NotifyListeners(aor, changed);
  if (aor.find('\n') != std::string::npos) return;
  std::string payload = absl::StrCat(origin_, "\n", aor, "\n", EncodeBindings(changed));
  commands_->Command({"PUBLISH", channel(), payload},
                     [aor](absl::StatusOr<const redisReply*> published) {
                       if (!published.ok()) {
                         Logger()->debug("redis: PUBLISH failed aor={} error=\"{}\"", aor,
                                         published.status().message());
                       }
                     });
}

void RedisBindingStore::Update(const std::string& aor, absl::Time now, Mutation mutate,
                               ReplaceDone done) {
  UpdateAttempt(aor, now, std::move(mutate), 0, std::move(done));
}

// GET, mutate, then the compare-and-set script: written only if the key still holds what was
// read, else read again (another request or replica changed the AOR in between).
void RedisBindingStore::UpdateAttempt(std::string aor, absl::Time now, Mutation mutate, int attempt,
                                      ReplaceDone done) {
  std::string key = AorKey(aor);
  commands_->Command({"GET", key}, [this, key, aor = std::move(aor), now, attempt,
                                    mutate = std::move(mutate), done = std::move(done)](
                                       absl::StatusOr<const redisReply*> reply) mutable {
    if (!reply.ok()) {
      done(reply.status());
      return;
    }
    const redisReply* r = *reply;
    std::string old_record;
    std::vector<Binding> old;
    if (r->type == REDIS_REPLY_STRING) {
      old_record.assign(r->str, r->len);
      auto decoded = DecodeBindings(old_record, aor);
      if (!decoded.ok()) {
        done(absl::DataLossError(absl::StrCat("redis: ", aor, ": ", decoded.status().message())));
        return;
      }
      old = *std::move(decoded);
    } else if (r->type != REDIS_REPLY_NIL) {
      done(absl::InternalError(absl::StrCat("redis: GET of ", aor, ": unexpected reply")));
      return;
    }
    std::vector<Binding> live_old;
    for (const Binding& b : old) {
      if (!b.expired(now)) live_old.push_back(b);
    }
    std::vector<Binding> live;
    for (Binding& b : mutate(std::move(live_old))) {
      if (b.expired(now)) continue;
      b.aor = aor;
      live.push_back(std::move(b));
    }
    std::string new_record = live.empty() ? std::string() : EncodeBindings(live);
    if (new_record == old_record) {  // nothing changes (e.g. no such device to remove)
      done(absl::OkStatus());
      return;
    }
    std::string ttl = live.empty() ? "0" : TtlMillis(LatestExpiry(live), now);
    commands_->Command({"EVAL", kCasScript, "1", key, old_record, new_record, ttl},
                       [this, aor = std::move(aor), now, attempt, mutate = std::move(mutate),
                        old = std::move(old), live = std::move(live),
                        done = std::move(done)](absl::StatusOr<const redisReply*> cas) mutable {
                         if (!cas.ok()) {
                           done(cas.status());
                           return;
                         }
                         if ((*cas)->type == REDIS_REPLY_INTEGER && (*cas)->integer == 1) {
                           AfterWrite(aor, old, live, now);
                           done(absl::OkStatus());
                           return;
                         }
                         CasConflicts().Inc();
                         if (attempt + 1 >= kMaxCasAttempts) {
                           done(absl::AbortedError(
                               absl::StrCat("redis: ", aor, " kept changing during an update")));
                           return;
                         }
                         UpdateAttempt(std::move(aor), now, std::move(mutate), attempt + 1,
                                       std::move(done));
                       });
  });
}

void RedisBindingStore::RemoveByPushKey(const std::string& aor, const std::string& push_key,
                                        absl::Time now, RemoveDone done) {
  if (push_key.empty()) {  // "" = no push parameters: not a device to remove
    done(size_t{0});
    return;
  }
  // Counted by the last run of the mutation (the one whose write succeeded).
  auto removed = std::make_shared<size_t>(0);
  Update(
      aor, now,
      [push_key, removed](std::vector<Binding> live) {
        *removed = 0;
        std::vector<Binding> kept;
        for (Binding& b : live) {
          if (b.push_key() == push_key) {
            ++*removed;
          } else {
            kept.push_back(std::move(b));
          }
        }
        return kept;
      },
      [removed, done = std::move(done)](absl::Status st) {
        if (!st.ok()) {
          done(st);
          return;
        }
        done(*removed);
      });
}

void RedisBindingStore::OnMessage(absl::string_view payload) {
  size_t first = payload.find('\n');
  if (first == absl::string_view::npos) return;
  absl::string_view origin = payload.substr(0, first);
  if (origin == origin_) return;  // our own Replace: listeners already ran
  size_t second = payload.find('\n', first + 1);
  if (second == absl::string_view::npos) return;
  std::string aor(payload.substr(first + 1, second - first - 1));
  auto bindings = DecodeBindings(payload.substr(second + 1), aor);
  if (!bindings.ok()) {
    Logger()->warn("redis: ignored a malformed registration message aor={} error=\"{}\"", aor,
                   bindings.status().message());
    return;
  }
  NotifyListeners(aor, *bindings);
}

}  // namespace pushgate::proxy
