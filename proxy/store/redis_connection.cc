#include "proxy/store/redis_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"

namespace pushgate::proxy {

namespace {

// Redis error prefixes that mean "try again later" rather than "this request is wrong".
constexpr absl::string_view kTransientErrors[] = {"LOADING",     "BUSY",       "READONLY", "NOAUTH",
                                                  "WRONGPASS",   "MASTERDOWN", "TRYAGAIN", "OOM",
                                                  "CLUSTERDOWN", "NOREPLICAS", "MISCONF"};

std::shared_ptr<spdlog::logger> Logger() {
  static const std::shared_ptr<spdlog::logger> logger = log::Get("proxy.redis");
  return logger;
}

absl::Status MapErrorReply(absl::string_view message) {
  for (absl::string_view prefix : kTransientErrors) {
    if (absl::StartsWith(message, prefix)) {
      return absl::UnavailableError(absl::StrCat("redis unavailable: ", message));
    }
  }
  return absl::InternalError(absl::StrCat("redis error: ", message));
}

// hiredis's error text for a context, or `fallback` when it has none.
std::string ErrorOf(const redisAsyncContext* ac, absl::string_view fallback) {
  return ac->errstr != nullptr && ac->errstr[0] != '\0' ? std::string(ac->errstr)
                                                        : std::string(fallback);
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

std::string Describe(const RedisAddress& a) {
  return a.unix_socket ? "unix:" + a.host : absl::StrCat(a.host, ":", a.port);
}

}  // namespace

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

RedisConnection::RedisConnection(EventLoop& loop, Options options)
    : loop_(loop),
      options_(std::move(options)),
      backoff_(options_.min_backoff),
      last_error_(absl::UnavailableError("redis unavailable: not connected yet")),
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
}

RedisConnection::~RedisConnection() {
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

void RedisConnection::SetSubscription(std::string channel,
                                      std::function<void(absl::string_view)> on_message) {
  channel_ = std::move(channel);
  on_message_ = std::move(on_message);
}

absl::Duration RedisConnection::RetryAfter() const {
  absl::Duration wait = absl::Seconds(1);
  if (state_ == State::kDown) {
    wait = std::max(wait, absl::Ceil(next_attempt_ - loop_.Now(), absl::Seconds(1)));
  }
  return wait;
}

void RedisConnection::Command(std::initializer_list<absl::string_view> args, ReplyHandler handler) {
  Send(args, std::move(handler), loop_.Now() + options_.op_timeout);
}

void RedisConnection::Send(std::initializer_list<absl::string_view> args, ReplyHandler handler,
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
  // The command's id travels as hiredis's privdata pointer (compared, never dereferenced).
  void* privdata = reinterpret_cast<void*>(  // NOLINT(performance-no-int-to-ptr)
      static_cast<uintptr_t>(id));
  if (redisAsyncCommandArgv(ac_, &RedisConnection::ReplyTrampoline, privdata, argc, argv,
                            argvlen) != REDIS_OK) {
    handler(absl::UnavailableError("redis unavailable: connection closing"));
    return;
  }
  pending_.push_back(Pending{id, deadline, std::move(handler)});
  if (!op_timer_->active() || deadline < timer_deadline_) ArmOpTimer(deadline);
}

void RedisConnection::ArmOpTimer(absl::Time deadline) {
  timer_deadline_ = deadline;
  op_timer_->Start(deadline - loop_.Now());
}

void RedisConnection::Connect() {
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
  redisAsyncSetConnectCallback(ac, &RedisConnection::ConnectTrampoline);
  redisAsyncSetDisconnectCallback(ac, &RedisConnection::DisconnectTrampoline);
  SendHandshake();
}

// Pipelined before anything else; the connection is up when PING answers.
void RedisConnection::SendHandshake() {
  absl::Time deadline = loop_.Now() + options_.connect_timeout;
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      Send({"AUTH", options_.password}, HandshakeStep("AUTH", false), deadline);
    } else {
      Send({"AUTH", options_.username, options_.password}, HandshakeStep("AUTH", false), deadline);
    }
  }
  if (options_.db != 0) {
    Send({"SELECT", absl::StrCat(options_.db)}, HandshakeStep("SELECT", false), deadline);
  }
  Send({"PING"}, HandshakeStep("PING", true), deadline);
}

RedisConnection::ReplyHandler RedisConnection::HandshakeStep(absl::string_view what, bool last) {
  return [this, what, last](const absl::StatusOr<const redisReply*>& reply) {
    if (!reply.ok()) {
      if (state_ != State::kDown) {
        Lost(absl::StrCat(what, " failed: ", reply.status().message()), true);
      }
      return;
    }
    if (last) OnUp();
  };
}

void RedisConnection::OnUp() {
  state_ = State::kUp;
  failed_attempts_ = 0;
  up_gauge_.Set(1);
  backoff_ = options_.min_backoff;
  Logger()->info("redis connected connection={} address={}", options_.name,
                 Describe(options_.address));
  if (!channel_.empty()) {
    redisAsyncCommand(ac_, &RedisConnection::SubscriptionTrampoline, nullptr, "SUBSCRIBE %b",
                      channel_.data(), channel_.size());
  }
}

void RedisConnection::Lost(absl::string_view why, bool free_context) {
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

void RedisConnection::FailAll(const absl::Status& status) {
  std::deque<Pending> pending = std::move(pending_);
  pending_.clear();
  unavailable_.Inc(pending.size());
  for (Pending& p : pending) p.handler(status);
}

void RedisConnection::OnOpTimer() {
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

void RedisConnection::OnReply(redisAsyncContext* ac, redisReply* reply, uint64_t id) {
  if (reply == nullptr) {
    Lost(ErrorOf(ac, "connection closed"), false);
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

void RedisConnection::OnSubscriptionReply(redisAsyncContext* ac, redisReply* reply) {
  if (reply == nullptr) {
    Lost(ErrorOf(ac, "connection closed"), false);
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  absl::string_view kind(reply->element[0]->str, reply->element[0]->len);
  if (kind == "subscribe") {
    subscribed_ = true;
  } else if (kind == "message" && reply->element[2]->type == REDIS_REPLY_STRING) {
    on_message_(absl::string_view(reply->element[2]->str, reply->element[2]->len));
  }
}

void RedisConnection::ReplyTrampoline(redisAsyncContext* ac, void* reply, void* privdata) noexcept {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self == nullptr) return;
  self->OnReply(ac, static_cast<redisReply*>(reply),
                static_cast<uint64_t>(reinterpret_cast<uintptr_t>(privdata)));
}

void RedisConnection::SubscriptionTrampoline(redisAsyncContext* ac, void* reply, void*) noexcept {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self == nullptr) return;
  self->OnSubscriptionReply(ac, static_cast<redisReply*>(reply));
}

void RedisConnection::ConnectTrampoline(const redisAsyncContext* ac, int status) noexcept {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self == nullptr || status == REDIS_OK) return;  // up once PING answers
  // hiredis frees the context right after this callback.
  self->Lost(ErrorOf(ac, "connect failed"), false);
}

void RedisConnection::DisconnectTrampoline(const redisAsyncContext* ac, int) noexcept {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self == nullptr) return;
  self->Lost(ErrorOf(ac, "connection closed"), false);
}

}  // namespace pushgate::proxy
