#include "pusher/http2/pool.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/status.h"
#include "pusher/http2/backoff.h"
#include "pusher/http2/call.h"
#include "pusher/http2/connection.h"
#include "pusher/http2/intrusive_list.h"
#include "pusher/http2/resolver.h"
#include "pusher/http2/tls.h"

namespace pushgate::http2 {
namespace {

std::once_flag g_evthread_once;

constexpr char kDeadlineAfterSentMessage[] =
    "deadline exceeded waiting for the response; the request may have been delivered";
constexpr char kDeadlineBeforeSentMessage[] = "deadline exceeded before the request was sent";

timeval AsTimeval(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  return absl::ToTimeval(d);
}

Result ShutDownResult() {
  return Result(FailureReason::kShutdown, absl::UnavailableError("pool shut down"));
}

// The pool's metrics, looked up once.
struct PoolMetrics {
  explicit PoolMetrics(const std::string& pool) {
    auto& reg = metrics::Registry::Default();
    connections = &reg.GetGauge("pushgate_http2_connections", "Open or opening HTTP/2 connections",
                                {{"pool", pool}});
    auto counter = [&](const char* result) {
      return &reg.GetCounter("pushgate_http2_requests_total", "HTTP/2 requests by result",
                             {{"pool", pool}, {"result", result}});
    };
    ok = counter("ok");
    deadline = counter("deadline_exceeded");
    unavailable = counter("unavailable");
    exhausted = counter("resource_exhausted");
    other = counter("other");
    replays = &reg.GetCounter("pushgate_http2_goaway_replays_total",
                              "Requests replayed because the server did not process them",
                              {{"pool", pool}});
    connect_failures = &reg.GetCounter("pushgate_http2_connect_failures_total",
                                       "Failed HTTP/2 connection attempts", {{"pool", pool}});
  }
  void CountResult(const absl::Status& status) {
    switch (status.code()) {
      case absl::StatusCode::kOk:
        ok->Inc();
        break;
      case absl::StatusCode::kDeadlineExceeded:
        deadline->Inc();
        break;
      case absl::StatusCode::kUnavailable:
        unavailable->Inc();
        break;
      case absl::StatusCode::kResourceExhausted:
        exhausted->Inc();
        break;
      default:
        other->Inc();
    }
  }

  metrics::Gauge* connections;
  metrics::Counter* ok;
  metrics::Counter* deadline;
  metrics::Counter* unavailable;
  metrics::Counter* exhausted;
  metrics::Counter* other;
  metrics::Counter* replays;
  metrics::Counter* connect_failures;
};

}  // namespace

class Pool::Impl final : public ConnectionOwner {
 public:
  Impl(PoolOptions options, Origin origin, SslCtxPtr ctx);
  ~Impl() override;
  absl::Status Start();

  void Submit(Request request, ResponseCallback callback);
  void Drain(absl::Duration timeout);
  Stats GetStats() const;

  // ConnectionOwner (loop thread).
  void OnConnectionReady(Connection* conn) override;
  void OnConnectionClosed(Connection* conn, const absl::Status& reason, bool was_ready,
                          bool transient) override;
  void ScheduleDispatch() override { event_active(dispatch_event_, EV_READ, 0); }
  void OnLeftQueue() override {
    in_flight_.fetch_add(1);
    queued_.fetch_sub(1);
  }
  void Requeue(std::unique_ptr<Call> call, bool replay) override;
  void Finish(std::unique_ptr<Call> call, Result result) override {
    Complete(std::move(call), std::move(result), /*in_flight=*/true);
  }

 private:
  struct InboxItem {
    Request request;
    ResponseCallback callback;
    bool rejected;
  };

  static void OnWakeupCb(evutil_socket_t, short, void* arg) noexcept {
    static_cast<Impl*>(arg)->OnWakeup();
  }
  static void OnDispatchCb(evutil_socket_t, short, void* arg) noexcept {
    static_cast<Impl*>(arg)->Dispatch();
  }
  static void OnReapCb(evutil_socket_t, short, void* arg) noexcept {
    static_cast<Impl*>(arg)->graveyard_.clear();
  }
  static void OnDeadlineCb(evutil_socket_t, short, void* arg) noexcept {
    static_cast<Impl*>(arg)->OnDeadlines();
  }

  void Loop();
  void OnWakeup();
  // Queues a submitted request, or answers it at once (invalid, expired, failing fast).
  void Accept(InboxItem item, absl::Time now, bool stopping);
  void Dispatch();
  void MaybeOpenConnection();
  void OpenConnection(absl::Time now);
  void OnConnectAttemptFailed(uint64_t conn_id, const absl::Status& reason, bool transient);
  // Deadlines: calls in deadline order, one timer for the earliest (instead of a timer per call).
  void TrackDeadline(Call* call, absl::Time now);
  void ArmDeadlineTimer(absl::Time now);
  void OnDeadlines();
  void OnDeadline(Call* call);
  void Shutdown();
  bool FailFast() const;
  void FailQueued(FailureReason reason, const absl::Status& status);
  // Answers a call: user callback then bookkeeping. `in_flight` says which count it left.
  void Complete(std::unique_ptr<Call> call, Result result, bool in_flight);
  void NotifyDrain();

  const PoolOptions options_;
  const Origin origin_;
  const SslCtxPtr ssl_ctx_;
  std::shared_ptr<spdlog::logger> log_;
  PoolMetrics metrics_;

  event_base* base_ = nullptr;
  std::unique_ptr<Resolver> resolver_;
  ConnectionEnv env_{};
  event* wakeup_event_ = nullptr;
  event* dispatch_event_ = nullptr;
  event* reap_event_ = nullptr;
  event* reconnect_timer_ = nullptr;
  event* deadline_timer_ = nullptr;
  std::thread thread_;

  std::mutex inbox_mu_;
  std::vector<InboxItem> inbox_;
  bool stop_requested_ = false;
  bool loop_exited_ = false;

  std::atomic<size_t> queued_{0};
  std::atomic<size_t> in_flight_{0};
  std::atomic<int> connections_{0};
  std::atomic<uint64_t> goaway_replays_{0};
  std::atomic<int> drain_waiters_{0};
  std::mutex drain_mu_;
  std::condition_variable drain_cv_;

  // Loop thread only. The lists come first: they outlive the calls (in queue_ and connections).
  IntrusiveList<Call> deadlines_{&Call::deadline_node};    // earliest deadline first
  IntrusiveList<Call> queue_{&Call::queue_node};           // owns its calls
  absl::Time deadline_timer_at_ = absl::InfiniteFuture();  // when the armed timer fires
  std::vector<std::unique_ptr<Connection>> conns_;
  std::vector<std::unique_ptr<Connection>> graveyard_;
  uint64_t next_conn_id_ = 1;
  int consecutive_failures_ = 0;
  absl::Time next_connect_allowed_ = absl::InfinitePast();
  absl::Status last_error_;   // last connection failure, for messages
  absl::Status fatal_error_;  // last non-transient failure, cleared by a successful connection
  bool shutting_down_ = false;
  std::mt19937 rng_{std::random_device{}()};

  // The queue owns its calls: in and out as unique_ptr.
  void PushQueue(std::unique_ptr<Call> call, bool front) {
    Call* c = call.release();
    front ? queue_.PushFront(c) : queue_.PushBack(c);
  }
  std::unique_ptr<Call> TakeQueued(Call* call) {
    queue_.Remove(call);
    return std::unique_ptr<Call>(call);
  }
  void DeleteQueue() {
    while (!queue_.empty()) TakeQueued(queue_.front());
  }
};

Pool::Impl::Impl(PoolOptions options, Origin origin, SslCtxPtr ctx)
    : options_(std::move(options)),
      origin_(std::move(origin)),
      ssl_ctx_(std::move(ctx)),
      log_(log::Get("pusher.http2")),
      metrics_(options_.name) {}

absl::Status Pool::Impl::Start() {
  std::call_once(g_evthread_once, [] { evthread_use_pthreads(); });
  base_ = event_base_new();
  if (base_ == nullptr) return absl::InternalError("event_base_new failed");
  ASSIGN_OR_RETURN(resolver_, Resolver::Create(base_, origin_.host, origin_.host_is_ip,
                                               options_.resolv_conf, options_.name));
  env_ = ConnectionEnv{base_, resolver_.get(), ssl_ctx_.get(), &origin_, &options_};
  wakeup_event_ = event_new(base_, -1, 0, OnWakeupCb, this);
  dispatch_event_ = event_new(base_, -1, 0, OnDispatchCb, this);
  reap_event_ = event_new(base_, -1, 0, OnReapCb, this);
  reconnect_timer_ = evtimer_new(base_, OnDispatchCb, this);
  deadline_timer_ = evtimer_new(base_, OnDeadlineCb, this);
  if (options_.min_connections > 0) ScheduleDispatch();  // opens them once the loop runs
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

Pool::Impl::~Impl() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> l(inbox_mu_);
      stop_requested_ = true;
    }
    event_active(wakeup_event_, EV_READ, 0);
    thread_.join();
    // Shutdown() freed every connection, but a bufferevent is only released by its finalizer,
    // and a deferred callback still queued (BEV_OPT_DEFER_CALLBACKS) holds a reference that only
    // running it drops: event_base_free() would cancel it and leak the bufferevent with its SSL
    // and buffers. A few non-blocking rounds run them (connection callbacks are unset by then,
    // the pool's own events find shutting_down_ set).
    for (int round = 0; round < 8; ++round) event_base_loop(base_, EVLOOP_NONBLOCK);
  }
  // Submissions that raced the loop's exit (from callbacks during shutdown).
  std::vector<InboxItem> rest;
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    loop_exited_ = true;
    rest.swap(inbox_);
  }
  for (auto& item : rest) item.callback(ShutDownResult());
  DeleteQueue();
  for (event* e :
       {wakeup_event_, dispatch_event_, reap_event_, reconnect_timer_, deadline_timer_}) {
    if (e != nullptr) event_free(e);
  }
  resolver_.reset();
  if (base_ != nullptr) event_base_free(base_);
}

void Pool::Impl::Loop() {
  std::string thread_name = ("h2-" + options_.name).substr(0, 15);
  pthread_setname_np(pthread_self(), thread_name.c_str());
  BlockSigpipeInThisThread();
  event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
}

void Pool::Impl::Submit(Request request, ResponseCallback callback) {
  bool rejected = false;
  if (queued_.fetch_add(1) >= options_.max_queue) {
    queued_.fetch_sub(1);
    rejected = true;
  }
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    if (!loop_exited_) {
      // One wakeup per batch: a non-empty inbox already has one pending (OnWakeup takes the
      // whole inbox under this lock), so a busy pool skips libevent's lock and notify per push.
      bool wake = inbox_.empty();
      inbox_.push_back({std::move(request), std::move(callback), rejected});
      if (wake) event_active(wakeup_event_, EV_READ, 0);
      return;
    }
  }
  if (!rejected) queued_.fetch_sub(1);
  callback(ShutDownResult());
}

void Pool::Impl::OnWakeup() {
  std::vector<InboxItem> batch;
  bool stop;
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    batch.swap(inbox_);
    stop = stop_requested_;
  }
  const absl::Time now = absl::Now();
  for (auto& item : batch) Accept(std::move(item), now, stop);
  if (stop) {
    Shutdown();
    return;
  }
  Dispatch();
}

void Pool::Impl::Accept(InboxItem item, absl::Time now, bool stopping) {
  if (item.rejected) {
    absl::Status s = absl::ResourceExhaustedError(
        absl::StrCat("queue full (", options_.max_queue, " requests)"));
    metrics_.CountResult(s);
    item.callback(Result(FailureReason::kQueueFull, std::move(s)));
    return;
  }
  auto call = std::make_unique<Call>(std::move(item.request), std::move(item.callback));
  const Request& request = call->request();
  if (shutting_down_ || stopping) {
    Complete(std::move(call), ShutDownResult(), false);
  } else if (request.path.empty() || request.path[0] != '/' || request.method.empty()) {
    Complete(
        std::move(call),
        Result(FailureReason::kInvalidRequest,
               absl::InvalidArgumentError("request needs a method and a path starting with '/'")),
        false);
  } else if (request.deadline <= now) {
    Complete(std::move(call),
             Result(FailureReason::kDeadlineBeforeSent,
                    absl::DeadlineExceededError("deadline exceeded before sending")),
             false);
  } else if (FailFast()) {
    Complete(std::move(call),
             Result(FailureReason::kTlsFailure, absl::UnavailableError(fatal_error_.message())),
             false);
  } else {
    if (request.deadline != absl::InfiniteFuture()) TrackDeadline(call.get(), now);
    PushQueue(std::move(call), /*front=*/false);
  }
}

bool Pool::Impl::FailFast() const {
  if (fatal_error_.ok()) return false;
  for (const auto& c : conns_) {
    if (c->state() != Connection::State::kClosed) return false;
  }
  return absl::Now() < next_connect_allowed_;
}

void Pool::Impl::Dispatch() {
  if (shutting_down_) return;
  std::vector<Connection*> touched;
  while (!queue_.empty()) {
    Connection* target = nullptr;
    for (const auto& c : conns_) {
      if (c->FreeSlots() > 0) {
        target = c.get();
        break;
      }
    }
    if (target == nullptr) break;
    target->StartStream(TakeQueued(queue_.front()));
    if (std::find(touched.begin(), touched.end(), target) == touched.end()) {
      touched.push_back(target);
    }
  }
  for (Connection* c : touched) c->Flush();  // Flush may close c; it stays allocated (reaped)
  MaybeOpenConnection();
}

void Pool::Impl::MaybeOpenConnection() {
  if (shutting_down_) return;
  int counted = 0;
  for (const auto& c : conns_) {
    if (c->Opening()) return;  // one attempt at a time; its capacity is still unknown
    if (c->Accepting()) ++counted;
  }
  // Queued requests no open connection takes, or fewer than the connections kept open (not
  // while a drain waits: the service is stopping).
  const bool wanted = queue_.empty()
                          ? counted < options_.min_connections && drain_waiters_.load() == 0
                          : counted < options_.max_connections;
  if (!wanted) return;
  const absl::Time now = absl::Now();
  if (now < next_connect_allowed_) {
    if (!evtimer_pending(reconnect_timer_, nullptr)) {
      timeval tv = AsTimeval(next_connect_allowed_ - now);
      evtimer_add(reconnect_timer_, &tv);
    }
    return;
  }
  OpenConnection(now);
}

void Pool::Impl::OpenConnection(absl::Time now) {
  auto conn = std::make_unique<Connection>(env_, *this, next_conn_id_++);
  absl::Status s = conn->Start();
  if (!s.ok()) {
    // Nothing was registered with the loop that could call back: count it as a failed attempt.
    metrics_.connect_failures->Inc();
    ++consecutive_failures_;
    last_error_ = s;
    absl::Duration backoff = options_.reconnect_backoff_initial;
    next_connect_allowed_ = now + backoff;
    log_->warn("pool={} connection attempt failed: {}", options_.name, s.message());
    timeval tv = AsTimeval(backoff);
    evtimer_add(reconnect_timer_, &tv);
    return;
  }
  connections_.fetch_add(1);
  metrics_.connections->Add(1);
  conns_.push_back(std::move(conn));
}

void Pool::Impl::OnConnectionReady(Connection* conn) {
  consecutive_failures_ = 0;
  next_connect_allowed_ = absl::InfinitePast();
  fatal_error_ = absl::OkStatus();
  log_->info("pool={} conn={} connected to {}", options_.name, conn->id(), origin_.authority);
  ScheduleDispatch();
}

void Pool::Impl::OnConnectionClosed(Connection* conn, const absl::Status& reason, bool was_ready,
                                    bool transient) {
  auto it =
      std::find_if(conns_.begin(), conns_.end(), [conn](const auto& c) { return c.get() == conn; });
  if (it == conns_.end()) return;
  graveyard_.push_back(std::move(*it));
  conns_.erase(it);
  event_active(reap_event_, EV_READ, 0);
  connections_.fetch_sub(1);
  metrics_.connections->Add(-1);
  last_error_ = reason;
  if (was_ready) {
    log_->info("pool={} conn={} closed: {}", options_.name, conn->id(), reason.message());
    // A connection that worked: reconnect at once (the backoff restarts if that fails).
    next_connect_allowed_ = absl::InfinitePast();
  } else {
    OnConnectAttemptFailed(conn->id(), reason, transient);
  }
  ScheduleDispatch();
}

void Pool::Impl::OnConnectAttemptFailed(uint64_t conn_id, const absl::Status& reason,
                                        bool transient) {
  metrics_.connect_failures->Inc();
  ++consecutive_failures_;
  absl::Duration backoff =
      ReconnectDelay(options_.reconnect_backoff_initial, options_.reconnect_backoff_max,
                     consecutive_failures_, std::uniform_real_distribution<double>(0, 1)(rng_));
  next_connect_allowed_ = absl::Now() + backoff;
  log_->warn("pool={} conn={} connection attempt {} failed: {} (next attempt in {})", options_.name,
             conn_id, consecutive_failures_, reason.message(), absl::FormatDuration(backoff));
  if (!transient) {
    fatal_error_ = reason;
    FailQueued(FailureReason::kTlsFailure, absl::UnavailableError(reason.message()));
  }
}

void Pool::Impl::FailQueued(FailureReason reason, const absl::Status& status) {
  while (!queue_.empty()) Complete(TakeQueued(queue_.front()), Result(reason, status), false);
}

void Pool::Impl::Requeue(std::unique_ptr<Call> call, bool replay) {
  call->ResetForReplay();
  if (replay) {
    goaway_replays_.fetch_add(1);
    metrics_.replays->Inc();
  }
  queued_.fetch_add(1);
  in_flight_.fetch_sub(1);
  if (shutting_down_) {
    Complete(std::move(call), ShutDownResult(), false);
    return;
  }
  PushQueue(std::move(call), /*front=*/true);
  ScheduleDispatch();
}

void Pool::Impl::TrackDeadline(Call* call, absl::Time now) {
  // Deadlines mostly arrive in order (the same timeout after ever later starts): the insertion
  // point is found from the back, usually at once.
  Call* pos = nullptr;  // insert before this one (null: at the end)
  for (Call* c = deadlines_.back(); c != nullptr && c->deadline() > call->deadline();
       c = deadlines_.Prev(c)) {
    pos = c;
  }
  deadlines_.InsertBefore(pos, call);
  if (deadlines_.front() == call && call->deadline() < deadline_timer_at_) ArmDeadlineTimer(now);
}

void Pool::Impl::ArmDeadlineTimer(absl::Time now) {
  if (deadlines_.empty()) return;  // a pending timer fires for nothing and is not re-armed
  deadline_timer_at_ = deadlines_.front()->deadline();
  timeval tv = AsTimeval(deadline_timer_at_ - now);
  evtimer_add(deadline_timer_, &tv);  // re-adding moves a pending timer
}

void Pool::Impl::OnDeadlines() {
  deadline_timer_at_ = absl::InfiniteFuture();
  const absl::Time now = absl::Now();
  while (!deadlines_.empty() && deadlines_.front()->deadline() <= now) {
    Call* call = deadlines_.front();
    deadlines_.Remove(call);
    OnDeadline(call);
  }
  ArmDeadlineTimer(now);
}

void Pool::Impl::OnDeadline(Call* call) {
  if (call->connection() == nullptr) {
    std::unique_ptr<Call> owned = TakeQueued(call);
    std::string msg = "deadline exceeded while waiting for a free HTTP/2 stream";
    if (!last_error_.ok()) {
      absl::StrAppend(&msg, " (last connection error: ", last_error_.message(), ")");
    }
    Complete(std::move(owned),
             Result(FailureReason::kDeadlineBeforeSent, absl::DeadlineExceededError(msg)), false);
    return;
  }
  std::unique_ptr<Call> owned = call->connection()->Cancel(call);
  if (owned == nullptr) return;
  Result result = owned->headers_sent()
                      ? Result(FailureReason::kDeadlineAfterSent,
                               absl::DeadlineExceededError(kDeadlineAfterSentMessage))
                      : Result(FailureReason::kDeadlineBeforeSent,
                               absl::DeadlineExceededError(kDeadlineBeforeSentMessage));
  Complete(std::move(owned), std::move(result), true);
  ScheduleDispatch();
}

void Pool::Impl::Complete(std::unique_ptr<Call> call, Result result, bool in_flight) {
  deadlines_.Remove(call.get());
  if (result.ok()) {
    metrics_.ok->Inc();
  } else {
    metrics_.CountResult(result.failure().status);
    log_->debug("pool={} {} failed: {}", options_.name, call->LogLine(),
                result.failure().status.message());
  }
  ResponseCallback cb = call->TakeCallback();
  call.reset();
  cb(std::move(result));
  (in_flight ? in_flight_ : queued_).fetch_sub(1);
  NotifyDrain();
}

void Pool::Impl::NotifyDrain() {
  if (drain_waiters_.load() == 0) return;
  std::lock_guard<std::mutex> l(drain_mu_);
  drain_cv_.notify_all();
}

void Pool::Impl::Shutdown() {
  shutting_down_ = true;
  evtimer_del(reconnect_timer_);
  FailQueued(FailureReason::kShutdown, absl::UnavailableError("pool shut down"));
  // Callbacks may submit again; bounded rounds, the destructor answers the rest.
  const absl::Status down = absl::UnavailableError("pool shut down");
  for (int round = 0; round < 100; ++round) {
    while (!conns_.empty()) conns_.front()->Fail(down, true);  // moves it to the graveyard
    std::vector<InboxItem> batch;
    {
      std::lock_guard<std::mutex> l(inbox_mu_);
      batch.swap(inbox_);
    }
    if (batch.empty() && conns_.empty()) break;
    for (auto& item : batch) {
      if (!item.rejected) queued_.fetch_sub(1);
      item.callback(ShutDownResult());
    }
  }
  graveyard_.clear();
  NotifyDrain();
  event_base_loopbreak(base_);
}

void Pool::Impl::Drain(absl::Duration timeout) {
  drain_waiters_.fetch_add(1);
  {
    std::unique_lock<std::mutex> l(drain_mu_);
    drain_cv_.wait_for(l, absl::ToChronoNanoseconds(timeout),
                       [this] { return queued_.load() == 0 && in_flight_.load() == 0; });
  }
  drain_waiters_.fetch_sub(1);
}

Pool::Stats Pool::Impl::GetStats() const {
  return Stats{connections_.load(), queued_.load(), in_flight_.load(), goaway_replays_.load()};
}

// ---------------------------------------------------------------------------------------------
// Pool

Pool::Pool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pool::~Pool() = default;

namespace {

absl::Status ValidateOptions(const PoolOptions& options) {
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  if (options.min_connections < 0 || options.min_connections > options.max_connections) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_connections must be 0..max_connections (", options.max_connections, ")"));
  }
  if (options.max_queue < 1) return absl::InvalidArgumentError("max_queue must be at least 1");
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.ping_interval <= absl::ZeroDuration() ||
      options.reconnect_backoff_initial <= absl::ZeroDuration() ||
      options.reconnect_backoff_max < options.reconnect_backoff_initial) {
    return absl::InvalidArgumentError(
        "connect_timeout, ping_interval and reconnect_backoff_initial must be positive and "
        "reconnect_backoff_max >= reconnect_backoff_initial");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pool>> Pool::Create(PoolOptions options) {
  ASSIGN_OR_RETURN(Origin origin, ParseBaseUrl(options.base_url));
  RETURN_IF_ERROR(ValidateOptions(options));
  if (options.name.empty()) options.name = origin.authority;
  absl::StatusOr<SslCtxPtr> ctx = CreateClientContext(options.tls);
  if (!ctx.ok()) {
    return absl::Status(ctx.status().code(),
                        absl::StrCat("pool ", options.name, ": ", ctx.status().message()));
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(origin), std::move(*ctx));
  RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Pool>(new Pool(std::move(impl)));
}

void Pool::Submit(Request request, ResponseCallback callback) {
  impl_->Submit(std::move(request), std::move(callback));
}
void Pool::Drain(absl::Duration timeout) { impl_->Drain(timeout); }
Pool::Stats Pool::GetStats() const { return impl_->GetStats(); }

}  // namespace pushgate::http2
