#include "pusher/http2/pool.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/net.h"
#include "common/shutdown.h"
#include "common/status.h"
#include "pusher/http2/backoff.h"
#include "pusher/http2/tls.h"

namespace pushgate::http2 {
namespace {

constexpr absl::Duration kMaxPingTimeout = absl::Seconds(20);
constexpr size_t kOutputHighWater = 1 << 20;
constexpr int32_t kStreamWindow = 1 << 20;
constexpr int32_t kConnectionWindow = 1 << 24;
constexpr size_t kMaxResponseBody = 4 << 20;

std::once_flag g_evthread_once;

timeval AsTimeval(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  return absl::ToTimeval(d);
}

const char* Http2ErrorName(uint32_t code) { return nghttp2_http2_strerror(code); }

class Connection;

struct Call;

// Links of a call in one intrusive list (no allocation per call and per list).
struct CallLinks {
  Call* prev = nullptr;
  Call* next = nullptr;
  bool linked = false;
};

// Unlinks a call destroyed while its deadline is tracked (defined after Pool::Impl).
void ForgetDeadline(Pool::Impl* pool, Call* call);

struct Call {
  ~Call() {
    if (deadline_links.linked) ForgetDeadline(pool, this);
  }
  Pool::Impl* pool = nullptr;
  Request request;
  ResponseCallback callback;
  Response response;
  size_t body_offset = 0;
  Connection* conn = nullptr;  // null while queued in the pool
  int32_t stream_id = 0;
  bool headers_sent = false;
  bool response_complete = false;
  CallLinks queue_links;     // in Pool::Impl::queue_ while waiting for a stream
  CallLinks deadline_links;  // in Pool::Impl::deadlines_ while it has a finite deadline

  void ResetForReplay() {
    response = Response();
    body_offset = 0;
    conn = nullptr;
    stream_id = 0;
    headers_sent = false;
    response_complete = false;
  }
};

// An intrusive doubly-linked list of calls through their `Links` member.
template <CallLinks Call::*Links>
class CallList {
 public:
  bool empty() const { return head_ == nullptr; }
  Call* front() const { return head_; }
  Call* back() const { return tail_; }
  static Call* Next(Call* c) { return (c->*Links).next; }
  static Call* Prev(Call* c) { return (c->*Links).prev; }
  static bool Linked(const Call* c) { return (c->*Links).linked; }
  // Inserts `c` before `pos` (at the end when `pos` is null).
  void InsertBefore(Call* pos, Call* c) {
    CallLinks& l = c->*Links;
    l.next = pos;
    l.prev = pos != nullptr ? (pos->*Links).prev : tail_;
    (l.prev != nullptr ? (l.prev->*Links).next : head_) = c;
    (pos != nullptr ? (pos->*Links).prev : tail_) = c;
    l.linked = true;
  }
  void PushBack(Call* c) { InsertBefore(nullptr, c); }
  void PushFront(Call* c) { InsertBefore(head_, c); }
  void Remove(Call* c) {
    CallLinks& l = c->*Links;
    if (!l.linked) return;
    (l.prev != nullptr ? (l.prev->*Links).next : head_) = l.next;
    (l.next != nullptr ? (l.next->*Links).prev : tail_) = l.prev;
    l = CallLinks();
  }

 private:
  Call* head_ = nullptr;
  Call* tail_ = nullptr;
};

// Calls waiting for a stream; owns them (unique_ptr in and out).
class CallQueue {
 public:
  ~CallQueue() {
    while (!empty()) pop_front();
  }
  bool empty() const { return list_.empty(); }
  void push_back(std::unique_ptr<Call> c) { list_.PushBack(c.release()); }
  void push_front(std::unique_ptr<Call> c) { list_.PushFront(c.release()); }
  std::unique_ptr<Call> pop_front() { return Take(list_.front()); }
  std::unique_ptr<Call> Take(Call* c) {
    list_.Remove(c);
    return std::unique_ptr<Call>(c);
  }

 private:
  CallList<&Call::queue_links> list_;
};

}  // namespace

class Pool::Impl {
 public:
  Impl(PoolOptions options, Origin origin, SslCtxPtr ctx);
  ~Impl();
  absl::Status Start();

  void Submit(Request request, ResponseCallback callback);
  void Drain(absl::Duration timeout);
  Stats GetStats() const;

  // Loop-thread API used by connections.
  event_base* base() const { return base_; }
  evdns_base* dns() const { return dns_; }
  // A lookup failed: the next lookups ask the next nameserver of resolv.conf (in a loop).
  void OnLookupFailed();
  SSL_CTX* ssl_ctx() const { return ssl_ctx_.get(); }
  const Origin& origin() const { return origin_; }
  const PoolOptions& options() const { return options_; }
  const std::string& log_name() const { return options_.name; }
  // Puts a call back at the head of the queue (it never reached the server, or the server
  // refused it). `replay` counts it in goaway_replays.
  void Requeue(std::unique_ptr<Call> call, bool replay);
  // Completes a call: user callback then bookkeeping. `in_flight` says which count it left.
  void Finish(std::unique_ptr<Call> call, absl::StatusOr<Response> result, bool in_flight);
  void OnConnectionReady(Connection* conn);
  void OnConnectionClosed(Connection* conn, const absl::Status& reason, bool was_ready,
                          bool transient);
  // A call destroyed while its deadline is tracked (every path finishes calls first; this only
  // keeps the deadline list sound should one not).
  void ForgetDeadline(Call* call) { deadlines_.Remove(call); }
  void ScheduleDispatch() { event_active(dispatch_event_, EV_READ, 0); }
  void MovedToInFlight() {
    in_flight_.fetch_add(1);
    queued_.fetch_sub(1);
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
  void Dispatch();
  void MaybeOpenConnection();
  void OnDeadline(Call* call);
  // Deadlines: calls in deadline order, one timer for the earliest (instead of a timer per call).
  void TrackDeadline(Call* call, absl::Time now);
  void ArmDeadlineTimer(absl::Time now);
  void OnDeadlines();
  void Shutdown();
  bool FailFast() const;
  void FailQueued(const absl::Status& status);
  void NotifyDrain();
  void CountResult(const absl::Status& status);

  const PoolOptions options_;
  const Origin origin_;
  const SslCtxPtr ssl_ctx_;
  std::shared_ptr<spdlog::logger> log_;

  event_base* base_ = nullptr;
  evdns_base* dns_ = nullptr;
  // resolv.conf's nameservers, in order, when there are several; dns_ asks only the current one.
  std::vector<sockaddr_storage> nameservers_;
  size_t nameserver_ = 0;
  void UseNameserver(size_t index);
  event* wakeup_event_ = nullptr;
  event* dispatch_event_ = nullptr;
  event* reap_event_ = nullptr;
  event* reconnect_timer_ = nullptr;
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

  // Loop thread only.
  CallList<&Call::deadline_links> deadlines_;  // earliest deadline first; outlives queue_
  CallQueue queue_;
  event* deadline_timer_ = nullptr;
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

  metrics::Gauge* m_connections_;
  metrics::Counter* m_ok_;
  metrics::Counter* m_deadline_;
  metrics::Counter* m_unavailable_;
  metrics::Counter* m_exhausted_;
  metrics::Counter* m_other_;
  metrics::Counter* m_replays_;
  metrics::Counter* m_connect_failures_;
};

namespace {

// One TLS connection carrying one nghttp2 client session. Loop thread only.
class Connection {
 public:
  enum class State { kConnecting, kAwaitingSettings, kReady, kClosed };

  Connection(Pool::Impl& pool, uint64_t id) : pool_(pool), id_(id) {}
  ~Connection();

  absl::Status Start();
  State state() const { return state_; }
  uint64_t id() const { return id_; }
  // Can carry new streams.
  bool Accepting() const { return state_ == State::kReady && !goaway_received_; }
  bool Opening() const {
    return state_ == State::kConnecting || state_ == State::kAwaitingSettings;
  }
  size_t FreeSlots() const;
  void StartStream(std::unique_ptr<Call> call);
  // Removes a call whose deadline passed, resetting its stream. Returns the call.
  std::unique_ptr<Call> Cancel(Call* call);
  void Flush();
  // Fails the connection; its streams are replayed or failed; the pool is told.
  void Fail(const absl::Status& reason, bool transient);

 private:
  static void ReadCb(bufferevent*, void* arg) noexcept { static_cast<Connection*>(arg)->OnRead(); }
  static void WriteCb(bufferevent*, void* arg) noexcept { static_cast<Connection*>(arg)->Flush(); }
  static void EventCb(bufferevent*, short what, void* arg) noexcept {
    static_cast<Connection*>(arg)->OnEvent(what);
  }
  static void ConnectTimeoutCb(evutil_socket_t, short, void* arg) noexcept {
    auto* c = static_cast<Connection*>(arg);
    c->Fail(absl::UnavailableError(
                absl::StrCat("connecting to ", c->pool_.origin().authority, " timed out after ",
                             absl::FormatDuration(c->pool_.options().connect_timeout))),
            /*transient=*/true);
  }
  static void PingTimerCb(evutil_socket_t, short, void* arg) noexcept {
    static_cast<Connection*>(arg)->OnPingTimer();
  }

  // nghttp2 callbacks.
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept;
  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept;
  static int OnFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int error,
                            void* user) noexcept;
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user) noexcept;
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t len, void* user) noexcept;
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user) noexcept;
  static ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user) noexcept;

  void OnEvent(short what);
  void OnConnected();
  void OnRead();
  void OnPingTimer();
  Call* Find(int32_t stream_id) {
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  std::unique_ptr<Call> Extract(int32_t stream_id) {
    auto node = streams_.extract(stream_id);
    if (node.empty()) return nullptr;
    return std::move(node.mapped());
  }
  std::string TlsName() const {
    const auto& o = pool_.options().tls.server_name_override;
    return o.empty() ? pool_.origin().host : o;
  }

  Pool::Impl& pool_;
  const uint64_t id_;
  State state_ = State::kConnecting;
  SSL* ssl_ = nullptr;  // owned by bev_ once it exists
  bufferevent* bev_ = nullptr;
  nghttp2_session* session_ = nullptr;
  event* connect_timer_ = nullptr;
  event* ping_timer_ = nullptr;
  absl::Time last_recv_ = absl::Now();
  bool ping_outstanding_ = false;
  absl::Time ping_sent_;
  bool goaway_received_ = false;
  int32_t goaway_last_stream_id_ = INT32_MAX;
  absl::flat_hash_map<int32_t, std::unique_ptr<Call>> streams_;
  absl::flat_hash_set<int32_t> reset_streams_;  // reset by us, not yet closed by nghttp2
  std::shared_ptr<spdlog::logger> log_ = log::Get("pusher.http2");
};

Connection::~Connection() {
  if (connect_timer_ != nullptr) event_free(connect_timer_);
  if (ping_timer_ != nullptr) event_free(ping_timer_);
  if (bev_ != nullptr) {
    bufferevent_free(bev_);  // frees the SSL and closes the socket
  } else if (ssl_ != nullptr) {
    SSL_free(ssl_);
  }
  if (session_ != nullptr) nghttp2_session_del(session_);
}

absl::Status Connection::Start() {
  ERR_clear_error();
  ssl_ = SSL_new(pool_.ssl_ctx());
  if (ssl_ == nullptr) return absl::InternalError("SSL_new failed: " + DrainOpenSslErrors());
  const std::string name = TlsName();
  in6_addr addr_buf;
  bool name_is_ip = inet_pton(AF_INET, name.c_str(), &addr_buf) == 1 ||
                    inet_pton(AF_INET6, name.c_str(), &addr_buf) == 1;
  if (!name_is_ip) SSL_set_tlsext_host_name(ssl_, name.c_str());
  if (pool_.options().tls.verify_peer) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    int ok = name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                        : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (ok != 1) return absl::InternalError("cannot set the expected certificate name " + name);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  bev_ = bufferevent_openssl_socket_new(pool_.base(), -1, ssl_, BUFFEREVENT_SSL_CONNECTING,
                                        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (bev_ == nullptr) return absl::InternalError("bufferevent_openssl_socket_new failed");
  bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
  bufferevent_setcb(bev_, ReadCb, WriteCb, EventCb, this);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  connect_timer_ = evtimer_new(pool_.base(), ConnectTimeoutCb, this);
  timeval tv = AsTimeval(pool_.options().connect_timeout);
  evtimer_add(connect_timer_, &tv);
  if (bufferevent_socket_connect_hostname(bev_, pool_.dns(), AF_UNSPEC, pool_.origin().host.c_str(),
                                          pool_.origin().port) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot start connecting to ", pool_.origin().authority, ": ",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())));
  }
  log_->debug("pool={} conn={} connecting to {}", pool_.log_name(), id_, pool_.origin().authority);
  return absl::OkStatus();
}

void Connection::OnEvent(short what) {
  if (state_ == State::kClosed) return;
  if (what & BEV_EVENT_CONNECTED) {
    OnConnected();
    return;
  }
  const bool handshaking = state_ == State::kConnecting;
  std::string where = absl::StrCat(pool_.origin().authority);
  if (what & BEV_EVENT_ERROR) {
    if (int dns_err = bufferevent_socket_get_dns_error(bev_); dns_err != 0) {
      pool_.OnLookupFailed();
      Fail(absl::UnavailableError(absl::StrCat("cannot resolve ", pool_.origin().host, ": ",
                                               evutil_gai_strerror(dns_err))),
           true);
      return;
    }
    std::string ssl_errors;
    bool had_ssl_error = false;
    while (unsigned long e = bufferevent_get_openssl_error(bev_)) {
      had_ssl_error = true;
      const char* reason = ERR_reason_error_string(e);
      if (reason == nullptr) continue;  // libevent also queues bare errno values
      if (!ssl_errors.empty()) ssl_errors += "; ";
      ssl_errors += reason;
    }
    if (had_ssl_error && ssl_errors.empty()) ssl_errors = "unknown TLS error";
    if (handshaking) {
      long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        Fail(absl::UnavailableError(absl::StrCat("TLS certificate verification failed for ", where,
                                                 " (name ", TlsName(),
                                                 "): ", X509_verify_cert_error_string(verify))),
             false);
        return;
      }
    }
    if (!ssl_errors.empty()) {
      // Before the server's SETTINGS this is still the handshake (a TLS 1.3 server checks the
      // client certificate after the client finished): not transient.
      Fail(absl::UnavailableError(
               state_ == State::kReady
                   ? absl::StrCat("connection to ", where, " lost (TLS: ", ssl_errors, ")")
                   : absl::StrCat("TLS handshake with ", where, " failed: ", ssl_errors)),
           state_ == State::kReady);
      return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    Fail(absl::UnavailableError(
             absl::StrCat(handshaking ? "cannot connect to " : "connection to ", where,
                          handshaking ? ": " : " failed: ",
                          err != 0 ? evutil_socket_error_to_string(err) : "I/O error")),
         true);
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) {
    Fail(absl::UnavailableError(absl::StrCat(handshaking ? "peer closed the connection during "
                                                           "the TLS handshake: "
                                                         : "peer closed the connection: ",
                                             where)),
         true);
  }
}

void Connection::OnConnected() {
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn == nullptr || alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
    std::string got =
        alpn == nullptr ? "none" : std::string(reinterpret_cast<const char*>(alpn), alpn_len);
    Fail(
        absl::UnavailableError(absl::StrCat("peer did not negotiate h2 (", pool_.origin().authority,
                                            " selected ALPN: ", got, ")")),
        false);
    return;
  }
  int one = 1;
  setsockopt(bufferevent_getfd(bev_), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, OnFrameRecv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, OnFrameSend);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, OnFrameNotSend);
  nghttp2_session_callbacks_set_on_header_callback(cbs, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, OnStreamClose);
  int rv = nghttp2_session_client_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    Fail(absl::InternalError(absl::StrCat("nghttp2_session_client_new: ", nghttp2_strerror(rv))),
         true);
    return;
  }
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  state_ = State::kAwaitingSettings;
  last_recv_ = absl::Now();
  Flush();
}

size_t Connection::FreeSlots() const {
  if (!Accepting()) return 0;
  uint32_t max =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  size_t used = streams_.size() + reset_streams_.size();
  return max > used ? max - used : 0;
}

void Connection::StartStream(std::unique_ptr<Call> call) {
  const Request& req = call->request;
  // Lower-cased copies of names that were not lower-case (rare); reserved before the first one
  // so that the pointers in `nva` stay valid.
  std::vector<std::string> lower_names;
  absl::InlinedVector<nghttp2_nv, 12> nva;
  auto add = [&nva](const std::string& n, const std::string& v, uint8_t flags) {
    nva.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                   const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(),
                   v.size(), flags});
  };
  static const std::string kMethod = ":method", kScheme = ":scheme", kHttps = "https",
                           kAuthority = ":authority", kPath = ":path";
  add(kMethod, req.method, NGHTTP2_NV_FLAG_NONE);
  add(kScheme, kHttps, NGHTTP2_NV_FLAG_NONE);
  add(kAuthority, pool_.origin().authority, NGHTTP2_NV_FLAG_NONE);
  add(kPath, req.path, NGHTTP2_NV_FLAG_NONE);
  const auto& unindexed = pool_.options().unindexed_headers;
  for (const auto& [n, v] : req.headers) {
    const std::string* name = &n;
    if (std::any_of(n.begin(), n.end(), absl::ascii_isupper)) {
      if (lower_names.empty()) lower_names.reserve(req.headers.size());
      lower_names.push_back(absl::AsciiStrToLower(n));
      name = &lower_names.back();
    }
    // A value that changes with every request would only evict the repeating ones (the
    // authorization token above all) from the HPACK table: send it as a literal.
    const bool index = std::find(unindexed.begin(), unindexed.end(), *name) == unindexed.end();
    add(*name, v, index ? NGHTTP2_NV_FLAG_NONE : NGHTTP2_NV_FLAG_NO_INDEX);
  }
  nghttp2_data_provider provider;
  provider.source.ptr = nullptr;
  provider.read_callback = ReadBody;
  int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                      req.body.empty() ? nullptr : &provider, nullptr);
  if (id < 0) {
    pool_.MovedToInFlight();
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
      // Stream ids exhausted: this connection takes no more streams; another one will.
      log_->info("pool={} conn={} stream ids exhausted", pool_.log_name(), id_);
      goaway_received_ = true;
      pool_.Requeue(std::move(call), false);
    } else {
      pool_.Finish(std::move(call),
                   absl::InvalidArgumentError(
                       absl::StrCat("cannot submit the request: ", nghttp2_strerror(id))),
                   true);
    }
    return;
  }
  call->conn = this;
  call->stream_id = id;
  streams_.emplace(id, std::move(call));
  pool_.MovedToInFlight();
}

std::unique_ptr<Call> Connection::Cancel(Call* call) {
  std::unique_ptr<Call> owned = Extract(call->stream_id);
  if (owned == nullptr) return nullptr;
  if (session_ != nullptr && state_ != State::kClosed) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, owned->stream_id, NGHTTP2_CANCEL);
    if (owned->headers_sent) reset_streams_.insert(owned->stream_id);
    Flush();
  }
  return owned;
}

void Connection::Flush() {
  if (state_ == State::kClosed || session_ == nullptr) return;
  evbuffer* out = bufferevent_get_output(bev_);
  while (evbuffer_get_length(out) < kOutputHighWater) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      Fail(absl::InternalError(absl::StrCat("nghttp2 send error: ", nghttp2_strerror(n))), true);
      return;
    }
    if (n == 0) break;
    evbuffer_add(out, data, n);
  }
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0 &&
      evbuffer_get_length(out) == 0) {
    Fail(absl::UnavailableError(
             absl::StrCat("connection to ", pool_.origin().authority, " finished after GOAWAY")),
         true);
  }
}

void Connection::OnRead() {
  if (state_ == State::kClosed || session_ == nullptr) return;
  last_recv_ = absl::Now();
  evbuffer* in = bufferevent_get_input(bev_);
  while (evbuffer_get_length(in) > 0) {
    evbuffer_iovec vec;
    if (evbuffer_peek(in, -1, nullptr, &vec, 1) < 1) break;
    ssize_t n =
        nghttp2_session_mem_recv(session_, static_cast<const uint8_t*>(vec.iov_base), vec.iov_len);
    if (n < 0) {
      Fail(absl::UnavailableError(absl::StrCat("HTTP/2 protocol error from ",
                                               pool_.origin().authority, ": ",
                                               nghttp2_strerror(static_cast<int>(n)))),
           true);
      return;
    }
    evbuffer_drain(in, n);
    if (state_ == State::kClosed) return;
  }
  Flush();
}

void Connection::OnPingTimer() {
  if (state_ != State::kReady) return;
  absl::Time now = absl::Now();
  absl::Duration interval = pool_.options().ping_interval;
  absl::Duration timeout = std::min(interval, kMaxPingTimeout);
  if (ping_outstanding_) {
    if (now - ping_sent_ >= timeout) {
      Fail(absl::UnavailableError(absl::StrCat("PING to ", pool_.origin().authority,
                                               " not acknowledged within ",
                                               absl::FormatDuration(timeout))),
           true);
    }
    return;
  }
  if (now - last_recv_ >= interval) {
    nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
    ping_outstanding_ = true;
    ping_sent_ = now;
    log_->trace("pool={} conn={} idle, PING sent", pool_.log_name(), id_);
    Flush();
  }
}

void Connection::Fail(const absl::Status& reason, bool transient) {
  if (state_ == State::kClosed) return;
  const bool was_ready = state_ == State::kReady;
  state_ = State::kClosed;
  if (bev_ != nullptr) {
    bufferevent_setcb(bev_, nullptr, nullptr, nullptr, nullptr);
    bufferevent_disable(bev_, EV_READ | EV_WRITE);
  }
  if (connect_timer_ != nullptr) evtimer_del(connect_timer_);
  if (ping_timer_ != nullptr) evtimer_del(ping_timer_);
  // Decide the fate of every stream: never sent, or provably not processed -> replay;
  // otherwise the server may have processed it -> UNAVAILABLE.
  std::vector<int32_t> ids;
  for (const auto& [id, call] : streams_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (int32_t id : ids) {
    std::unique_ptr<Call> call = Extract(id);
    if (!call->headers_sent) {
      pool_.Requeue(std::move(call), false);
    } else if (goaway_received_ && id > goaway_last_stream_id_) {
      pool_.Requeue(std::move(call), true);
    } else {
      pool_.Finish(std::move(call),
                   absl::UnavailableError(absl::StrCat(reason.message(),
                                                       "; the request was sent and may have been "
                                                       "delivered")),
                   true);
    }
  }
  pool_.OnConnectionClosed(this, reason, was_ready, transient);
}

int Connection::OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                            void* user) noexcept {
  auto* c = static_cast<Connection*>(user);
  switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
        if (c->state_ == State::kAwaitingSettings) {
          c->state_ = State::kReady;
          evtimer_del(c->connect_timer_);
          c->ping_timer_ = event_new(c->pool_.base(), -1, EV_PERSIST, PingTimerCb, c);
          absl::Duration period =
              std::max(absl::Milliseconds(10),
                       std::min(c->pool_.options().ping_interval, kMaxPingTimeout) / 4);
          timeval tv = AsTimeval(period);
          evtimer_add(c->ping_timer_, &tv);
          c->pool_.OnConnectionReady(c);
        } else {
          c->pool_.ScheduleDispatch();  // the stream limit may have grown
        }
      }
      break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (Call* call = c->Find(frame->hd.stream_id)) call->response_complete = true;
      }
      break;
    case NGHTTP2_PING:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) c->ping_outstanding_ = false;
      break;
    case NGHTTP2_GOAWAY: {
      c->goaway_received_ = true;
      c->goaway_last_stream_id_ = std::min(c->goaway_last_stream_id_, frame->goaway.last_stream_id);
      std::string debug(reinterpret_cast<const char*>(frame->goaway.opaque_data),
                        std::min<size_t>(frame->goaway.opaque_data_len, 200));
      c->log_->info("pool={} conn={} GOAWAY last_stream_id={} error={} debug='{}'",
                    c->pool_.log_name(), c->id_, frame->goaway.last_stream_id,
                    Http2ErrorName(frame->goaway.error_code), log::JsonEscape(debug));
      c->pool_.ScheduleDispatch();  // open a replacement if requests wait
      break;
    }
    default:
      break;
  }
  return 0;
}

int Connection::OnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept {
  auto* c = static_cast<Connection*>(user);
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (Call* call = c->Find(frame->hd.stream_id)) call->headers_sent = true;
  }
  return 0;
}

int Connection::OnFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int error,
                               void* user) noexcept {
  auto* c = static_cast<Connection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  std::unique_ptr<Call> call = c->Extract(frame->hd.stream_id);
  if (call == nullptr) return 0;
  if (error == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED ||
      error == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE || error == NGHTTP2_ERR_STREAM_CLOSED ||
      error == NGHTTP2_ERR_STREAM_CLOSING || error == NGHTTP2_ERR_SESSION_CLOSING) {
    c->pool_.Requeue(std::move(call), false);
  } else {
    c->pool_.Finish(
        std::move(call),
        absl::InternalError(absl::StrCat("request not sent: ", nghttp2_strerror(error))), true);
  }
  return 0;
}

int Connection::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                         void* user) noexcept {
  auto* c = static_cast<Connection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Call* call = c->Find(frame->hd.stream_id);
  if (call == nullptr) return 0;
  absl::string_view n(reinterpret_cast<const char*>(name), namelen);
  absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    int status = 0;
    if (absl::SimpleAtoi(v, &status)) {
      call->response.status = status;
      call->response.headers.clear();  // a 1xx block is followed by the final one
    }
  } else if (!n.empty() && n[0] != ':') {
    call->response.headers.emplace_back(std::string(n), std::string(v));
  }
  return 0;
}

int Connection::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                            const uint8_t* data, size_t len, void* user) noexcept {
  auto* c = static_cast<Connection*>(user);
  Call* call = c->Find(stream_id);
  if (call == nullptr) return 0;
  if (call->response.body.size() + len > kMaxResponseBody) {
    std::unique_ptr<Call> owned = c->Extract(stream_id);
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
    c->reset_streams_.insert(stream_id);
    c->pool_.Finish(
        std::move(owned),
        absl::InternalError(absl::StrCat("response body larger than ", kMaxResponseBody, " bytes")),
        true);
    return 0;
  }
  call->response.body.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int Connection::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                              void* user) noexcept {
  auto* c = static_cast<Connection*>(user);
  if (c->reset_streams_.erase(stream_id) > 0) {
    c->pool_.ScheduleDispatch();
    return 0;
  }
  std::unique_ptr<Call> call = c->Extract(stream_id);
  if (call == nullptr) return 0;
  c->pool_.ScheduleDispatch();  // a slot is free
  if (call->response_complete) {
    Response response = std::move(call->response);
    c->pool_.Finish(std::move(call), std::move(response), true);
  } else if (error_code == NGHTTP2_REFUSED_STREAM) {
    // The server did not process it (RFC 9113 8.7): safe to send again.
    const bool sent = call->headers_sent;
    c->pool_.Requeue(std::move(call), sent);
  } else if (!call->headers_sent) {
    c->pool_.Requeue(std::move(call), false);
  } else {
    c->pool_.Finish(
        std::move(call),
        absl::UnavailableError(absl::StrCat(
            "stream reset by ", c->pool_.origin().authority, " (", Http2ErrorName(error_code),
            ") before the response completed; the request may have been delivered")),
        true);
  }
  return 0;
}

ssize_t Connection::ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                             uint32_t* data_flags, nghttp2_data_source*, void* user) noexcept {
  auto* c = static_cast<Connection*>(user);
  Call* call = c->Find(stream_id);
  if (call == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const std::string& body = call->request.body;
  size_t n = std::min(length, body.size() - call->body_offset);
  memcpy(buf, body.data() + call->body_offset, n);
  call->body_offset += n;
  if (call->body_offset == body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pool::Impl

Pool::Impl::Impl(PoolOptions options, Origin origin, SslCtxPtr ctx)
    : options_(std::move(options)),
      origin_(std::move(origin)),
      ssl_ctx_(std::move(ctx)),
      log_(log::Get("pusher.http2")) {
  auto& reg = metrics::Registry::Default();
  const std::string& pool = options_.name;
  m_connections_ = &reg.GetGauge("pushgate_http2_connections", "Open or opening HTTP/2 connections",
                                 {{"pool", pool}});
  auto counter = [&](const char* result) {
    return &reg.GetCounter("pushgate_http2_requests_total", "HTTP/2 requests by result",
                           {{"pool", pool}, {"result", result}});
  };
  m_ok_ = counter("ok");
  m_deadline_ = counter("deadline_exceeded");
  m_unavailable_ = counter("unavailable");
  m_exhausted_ = counter("resource_exhausted");
  m_other_ = counter("other");
  m_replays_ = &reg.GetCounter("pushgate_http2_goaway_replays_total",
                               "Requests replayed because the server did not process them",
                               {{"pool", pool}});
  m_connect_failures_ = &reg.GetCounter("pushgate_http2_connect_failures_total",
                                        "Failed HTTP/2 connection attempts", {{"pool", pool}});
}

absl::Status Pool::Impl::Start() {
  std::call_once(g_evthread_once, [] { evthread_use_pthreads(); });
  base_ = event_base_new();
  if (base_ == nullptr) return absl::InternalError("event_base_new failed");
  dns_ = evdns_base_new(base_, 0);
  if (dns_ == nullptr) return absl::InternalError("evdns_base_new failed");
  if (!origin_.host_is_ip) {
    // Missing resolv.conf falls back to defaults; /etc/hosts is honoured.
    evdns_base_resolv_conf_parse(dns_, DNS_OPTIONS_ALL, options_.resolv_conf.c_str());
    const int count = evdns_base_count_nameservers(dns_);
    for (int i = 0; count > 1 && i < count; ++i) {
      sockaddr_storage address{};
      if (evdns_base_get_nameserver_addr(dns_, i, reinterpret_cast<sockaddr*>(&address),
                                         sizeof(address)) > 0) {
        nameservers_.push_back(address);
      }
    }
    if (nameservers_.size() > 1) UseNameserver(0);
  }
  // evdns randomises the letter case of queries (0x20 encoding) by default; some resolvers
  // (podman's aardvark-dns) match names case-sensitively and answer NXDOMAIN to "EmuLaTor".
  evdns_base_set_option(dns_, "randomize-case:", "0");
  // Container resolv.conf files may list a nameserver that never answers. By default evdns
  // marks a nameserver down after 3 timeouts and then only probes it every 10 s or more, so a
  // name that is not resolvable yet at start-up stays unresolvable for a long while. Never mark
  // it down: the pool retries the connection with its own backoff, and a failed lookup moves
  // the next ones to the next nameserver (OnLookupFailed).
  evdns_base_set_option(dns_, "max-timeouts:", "255");
  evdns_base_set_option(dns_, "initial-probe-timeout:", "1");
  // A lost query (a container resolver reloading drops some) costs 2 s before the retry, not
  // evdns's default 5 s: the first push of a fresh replica waits for it.
  evdns_base_set_option(dns_, "timeout:", "2");
  evdns_base_set_option(dns_, "attempts:", "3");
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
  for (auto& item : rest) item.callback(absl::UnavailableError("pool shut down"));
  for (event* e :
       {wakeup_event_, dispatch_event_, reap_event_, reconnect_timer_, deadline_timer_}) {
    if (e != nullptr) event_free(e);
  }
  if (dns_ != nullptr) evdns_base_free(dns_, 0);
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
  callback(absl::UnavailableError("pool shut down"));
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
  for (auto& item : batch) {
    if (item.rejected) {
      absl::Status s = absl::ResourceExhaustedError(
          absl::StrCat("queue full (", options_.max_queue, " requests)"));
      CountResult(s);
      item.callback(std::move(s));
      continue;
    }
    auto call = std::make_unique<Call>();
    call->pool = this;
    call->request = std::move(item.request);
    call->callback = std::move(item.callback);
    if (shutting_down_ || stop) {
      Finish(std::move(call), absl::UnavailableError("pool shut down"), false);
    } else if (call->request.path.empty() || call->request.path[0] != '/' ||
               call->request.method.empty()) {
      Finish(std::move(call),
             absl::InvalidArgumentError("request needs a method and a path starting with '/'"),
             false);
    } else if (call->request.deadline <= now) {
      Finish(std::move(call), absl::DeadlineExceededError("deadline exceeded before sending"),
             false);
    } else if (FailFast()) {
      Finish(std::move(call), absl::UnavailableError(fatal_error_.message()), false);
    } else {
      if (call->request.deadline != absl::InfiniteFuture()) TrackDeadline(call.get(), now);
      queue_.push_back(std::move(call));
    }
  }
  if (stop) {
    Shutdown();
    return;
  }
  Dispatch();
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
    target->StartStream(queue_.pop_front());
    if (std::find(touched.begin(), touched.end(), target) == touched.end()) {
      touched.push_back(target);
    }
  }
  for (Connection* c : touched) c->Flush();  // Flush may close c; it stays allocated (reaped)
  MaybeOpenConnection();
}

void Pool::Impl::UseNameserver(size_t index) {
  nameserver_ = index;
  const sockaddr_storage& address = nameservers_[index];
  evdns_base_clear_nameservers_and_suspend(dns_);
  evdns_base_nameserver_sockaddr_add(
      dns_, reinterpret_cast<const sockaddr*>(&address),
      address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in), 0);
  evdns_base_resume(dns_);
}

void Pool::Impl::OnLookupFailed() {
  if (nameservers_.size() < 2) return;
  UseNameserver((nameserver_ + 1) % nameservers_.size());
  auto address = SockaddrToHostPort(&nameservers_[nameserver_]);
  log_->info("pool={} the next lookups of {} ask nameserver {}:{} ({} of {} in {})", options_.name,
             origin_.host, address ? address->first : "?", address ? address->second : 0,
             nameserver_ + 1, nameservers_.size(), options_.resolv_conf);
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
  auto conn = std::make_unique<Connection>(*this, next_conn_id_++);
  absl::Status s = conn->Start();
  if (!s.ok()) {
    // Nothing was registered with the loop that could call back: count it as a failed attempt.
    m_connect_failures_->Inc();
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
  m_connections_->Add(1);
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
  m_connections_->Add(-1);
  last_error_ = reason;
  const absl::Time now = absl::Now();
  if (was_ready) {
    log_->info("pool={} conn={} closed: {}", options_.name, conn->id(), reason.message());
    // A connection that worked: reconnect at once (the backoff restarts if that fails).
    next_connect_allowed_ = absl::InfinitePast();
  } else {
    m_connect_failures_->Inc();
    ++consecutive_failures_;
    absl::Duration backoff =
        ReconnectDelay(options_.reconnect_backoff_initial, options_.reconnect_backoff_max,
                       consecutive_failures_, std::uniform_real_distribution<double>(0, 1)(rng_));
    next_connect_allowed_ = now + backoff;
    log_->warn("pool={} conn={} connection attempt {} failed: {} (next attempt in {})",
               options_.name, conn->id(), consecutive_failures_, reason.message(),
               absl::FormatDuration(backoff));
    if (!transient) {
      fatal_error_ = reason;
      FailQueued(absl::UnavailableError(reason.message()));
    }
  }
  ScheduleDispatch();
}

void Pool::Impl::FailQueued(const absl::Status& status) {
  while (!queue_.empty()) Finish(queue_.pop_front(), status, false);
}

void Pool::Impl::Requeue(std::unique_ptr<Call> call, bool replay) {
  call->ResetForReplay();
  if (replay) {
    goaway_replays_.fetch_add(1);
    m_replays_->Inc();
  }
  queued_.fetch_add(1);
  in_flight_.fetch_sub(1);
  if (shutting_down_) {
    Finish(std::move(call), absl::UnavailableError("pool shut down"), false);
    return;
  }
  queue_.push_front(std::move(call));
  ScheduleDispatch();
}

namespace {
void ForgetDeadline(Pool::Impl* pool, Call* call) { pool->ForgetDeadline(call); }
}  // namespace

void Pool::Impl::TrackDeadline(Call* call, absl::Time now) {
  // Deadlines mostly arrive in order (the same timeout after ever later starts): the insertion
  // point is found from the back, usually at once.
  Call* pos = nullptr;  // insert before this one (null: at the end)
  for (Call* c = deadlines_.back(); c != nullptr && c->request.deadline > call->request.deadline;
       c = deadlines_.Prev(c)) {
    pos = c;
  }
  deadlines_.InsertBefore(pos, call);
  if (deadlines_.front() == call && call->request.deadline < deadline_timer_at_) {
    ArmDeadlineTimer(now);
  }
}

void Pool::Impl::ArmDeadlineTimer(absl::Time now) {
  if (deadlines_.empty()) return;  // a pending timer fires for nothing and is not re-armed
  deadline_timer_at_ = deadlines_.front()->request.deadline;
  timeval tv = AsTimeval(deadline_timer_at_ - now);
  evtimer_add(deadline_timer_, &tv);  // re-adding moves a pending timer
}

void Pool::Impl::OnDeadlines() {
  deadline_timer_at_ = absl::InfiniteFuture();
  const absl::Time now = absl::Now();
  while (!deadlines_.empty() && deadlines_.front()->request.deadline <= now) {
    Call* call = deadlines_.front();
    deadlines_.Remove(call);
    OnDeadline(call);
  }
  ArmDeadlineTimer(now);
}

void Pool::Impl::OnDeadline(Call* call) {
  if (call->conn == nullptr) {
    std::unique_ptr<Call> owned = queue_.Take(call);
    std::string msg = "deadline exceeded while waiting for a free HTTP/2 stream";
    if (!last_error_.ok())
      absl::StrAppend(&msg, " (last connection error: ", last_error_.message(), ")");
    Finish(std::move(owned), absl::DeadlineExceededError(msg), false);
    return;
  }
  std::unique_ptr<Call> owned = call->conn->Cancel(call);
  if (owned == nullptr) return;
  bool sent = owned->headers_sent;
  Finish(std::move(owned),
         absl::DeadlineExceededError(sent ? "deadline exceeded waiting for the response; the "
                                            "request may have been delivered"
                                          : "deadline exceeded before the request was sent"),
         true);
  ScheduleDispatch();
}

void Pool::Impl::CountResult(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      m_ok_->Inc();
      break;
    case absl::StatusCode::kDeadlineExceeded:
      m_deadline_->Inc();
      break;
    case absl::StatusCode::kUnavailable:
      m_unavailable_->Inc();
      break;
    case absl::StatusCode::kResourceExhausted:
      m_exhausted_->Inc();
      break;
    default:
      m_other_->Inc();
  }
}

void Pool::Impl::Finish(std::unique_ptr<Call> call, absl::StatusOr<Response> result,
                        bool in_flight) {
  deadlines_.Remove(call.get());
  CountResult(result.status());
  if (!result.ok()) {
    // The last path segment may be a device token: redact it.
    const std::string& path = call->request.path;
    size_t slash = path.rfind('/');
    std::string shown = slash == std::string::npos
                            ? log::RedactToken(path)
                            : path.substr(0, slash + 1) + log::RedactToken(path.substr(slash + 1));
    log_->debug("pool={} {} {} failed: {}", options_.name, call->request.method, shown,
                result.status().message());
  }
  ResponseCallback cb = std::move(call->callback);
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
  const absl::Status down = absl::UnavailableError("pool shut down");
  FailQueued(down);
  // Callbacks may submit again; bounded rounds, the destructor answers the rest.
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
      item.callback(down);
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

absl::StatusOr<std::unique_ptr<Pool>> Pool::Create(PoolOptions options) {
  ASSIGN_OR_RETURN(Origin origin, ParseBaseUrl(options.base_url));
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
