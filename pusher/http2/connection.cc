#include "pusher/http2/connection.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "pusher/http2/resolver.h"
#include "pusher/http2/tls.h"

namespace pushgate::http2 {
namespace {

constexpr absl::Duration kMaxPingTimeout = absl::Seconds(20);
constexpr size_t kOutputHighWater = 1 << 20;
constexpr int32_t kStreamWindow = 1 << 20;
constexpr int32_t kConnectionWindow = 1 << 24;
constexpr size_t kMaxResponseBody = 4 << 20;
// Ends the message of every failure after which the server may have processed the request (for
// the reader; callers decide from the FailureReason).
constexpr char kMayHaveBeenDelivered[] = "may have been delivered";

timeval AsTimeval(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  return absl::ToTimeval(d);
}

const char* Http2ErrorName(uint32_t code) { return nghttp2_http2_strerror(code); }

Connection* Self(void* user) { return static_cast<Connection*>(user); }

// The request's pseudo-headers and headers as nghttp2 name-value pairs pointing into `req` (and
// into `lower_names` for names that were not lower-case, which is rare).
class HeaderBlock {
 public:
  HeaderBlock(const Request& req, const std::string& authority,
              const std::vector<std::string>& unindexed) {
    static const std::string kMethod = ":method", kScheme = ":scheme", kHttps = "https",
                             kAuthority = ":authority", kPath = ":path";
    Add(kMethod, req.method, NGHTTP2_NV_FLAG_NONE);
    Add(kScheme, kHttps, NGHTTP2_NV_FLAG_NONE);
    Add(kAuthority, authority, NGHTTP2_NV_FLAG_NONE);
    Add(kPath, req.path, NGHTTP2_NV_FLAG_NONE);
    for (const auto& [n, v] : req.headers) {
      const std::string* name = &n;
      if (std::any_of(n.begin(), n.end(), absl::ascii_isupper)) {
        // Reserved before the first one so that the pointers in nva_ stay valid.
        if (lower_names_.empty()) lower_names_.reserve(req.headers.size());
        lower_names_.push_back(absl::AsciiStrToLower(n));
        name = &lower_names_.back();
      }
      // A value that changes with every request would only evict the repeating ones (the
      // authorization token above all) from the HPACK table: send it as a literal.
      const bool index = std::find(unindexed.begin(), unindexed.end(), *name) == unindexed.end();
      Add(*name, v, index ? NGHTTP2_NV_FLAG_NONE : NGHTTP2_NV_FLAG_NO_INDEX);
    }
  }
  const nghttp2_nv* data() const { return nva_.data(); }
  size_t size() const { return nva_.size(); }

 private:
  void Add(const std::string& n, const std::string& v, uint8_t flags) {
    nva_.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                    const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(),
                    v.size(), flags});
  }
  std::vector<std::string> lower_names_;
  absl::InlinedVector<nghttp2_nv, 12> nva_;
};

}  // namespace

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

std::string Connection::TlsName() const {
  const std::string& o = env_.options->tls.server_name_override;
  return o.empty() ? env_.origin->host : o;
}

absl::Status Connection::PrepareSsl() {
  ERR_clear_error();
  ssl_ = SSL_new(env_.ssl_ctx);
  if (ssl_ == nullptr) return absl::InternalError("SSL_new failed: " + DrainOpenSslErrors());
  const std::string name = TlsName();
  in6_addr addr_buf;
  bool name_is_ip = inet_pton(AF_INET, name.c_str(), &addr_buf) == 1 ||
                    inet_pton(AF_INET6, name.c_str(), &addr_buf) == 1;
  if (!name_is_ip) SSL_set_tlsext_host_name(ssl_, name.c_str());
  if (env_.options->tls.verify_peer) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    int ok = name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                        : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (ok != 1) return absl::InternalError("cannot set the expected certificate name " + name);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  return absl::OkStatus();
}

absl::Status Connection::Start() {
  if (absl::Status s = PrepareSsl(); !s.ok()) return s;
  bev_ = bufferevent_openssl_socket_new(env_.base, -1, ssl_, BUFFEREVENT_SSL_CONNECTING,
                                        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (bev_ == nullptr) return absl::InternalError("bufferevent_openssl_socket_new failed");
  bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
  bufferevent_setcb(bev_, ReadCb, WriteCb, EventCb, this);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  connect_timer_ = evtimer_new(env_.base, ConnectTimeoutCb, this);
  timeval tv = AsTimeval(env_.options->connect_timeout);
  evtimer_add(connect_timer_, &tv);
  if (bufferevent_socket_connect_hostname(bev_, env_.resolver->dns(), AF_UNSPEC,
                                          env_.origin->host.c_str(), env_.origin->port) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot start connecting to ", authority(), ": ",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())));
  }
  log_->debug("pool={} conn={} connecting to {}", log_name(), id_, authority());
  return absl::OkStatus();
}

void Connection::OnConnectTimeout() {
  Fail(absl::UnavailableError(absl::StrCat("connecting to ", authority(), " timed out after ",
                                           absl::FormatDuration(env_.options->connect_timeout))),
       /*transient=*/true);
}

void Connection::OnEvent(short what) {
  if (state_ == State::kClosed) return;
  if (what & BEV_EVENT_CONNECTED) {
    OnConnected();
    return;
  }
  if (what & BEV_EVENT_ERROR) {
    OnError();
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) {
    const bool handshaking = state_ == State::kConnecting;
    Fail(absl::UnavailableError(absl::StrCat(handshaking ? "peer closed the connection during "
                                                           "the TLS handshake: "
                                                         : "peer closed the connection: ",
                                             authority())),
         true);
  }
}

void Connection::OnError() {
  const bool handshaking = state_ == State::kConnecting;
  const std::string& where = authority();
  if (int dns_err = bufferevent_socket_get_dns_error(bev_); dns_err != 0) {
    env_.resolver->OnLookupFailed();
    Fail(absl::UnavailableError(absl::StrCat("cannot resolve ", env_.origin->host, ": ",
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
}

void Connection::OnConnected() {
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn == nullptr || alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
    std::string got =
        alpn == nullptr ? "none" : std::string(reinterpret_cast<const char*>(alpn), alpn_len);
    Fail(absl::UnavailableError(absl::StrCat("peer did not negotiate h2 (", authority(),
                                             " selected ALPN: ", got, ")")),
         false);
    return;
  }
  int one = 1;
  setsockopt(bufferevent_getfd(bev_), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!CreateSession()) return;
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  state_ = State::kAwaitingSettings;
  last_recv_ = absl::Now();
  Flush();
}

bool Connection::CreateSession() {
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, OnFrameRecvCb);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, OnFrameSendCb);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, OnFrameNotSendCb);
  nghttp2_session_callbacks_set_on_header_callback(cbs, OnHeaderCb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, OnDataChunkCb);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, OnStreamCloseCb);
  int rv = nghttp2_session_client_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    Fail(absl::InternalError(absl::StrCat("nghttp2_session_client_new: ", nghttp2_strerror(rv))),
         true);
    return false;
  }
  return true;
}

size_t Connection::FreeSlots() const {
  if (!Accepting()) return 0;
  uint32_t max =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  size_t used = streams_.size() + reset_streams_.size();
  return max > used ? max - used : 0;
}

void Connection::StartStream(std::unique_ptr<Call> call) {
  const Request& req = call->request();
  HeaderBlock headers(req, authority(), env_.options->unindexed_headers);
  nghttp2_data_provider provider;
  provider.source.ptr = nullptr;
  provider.read_callback = ReadBodyCb;
  int32_t id = nghttp2_submit_request(session_, nullptr, headers.data(), headers.size(),
                                      req.body.empty() ? nullptr : &provider, nullptr);
  owner_.OnLeftQueue();
  if (id < 0) {
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
      // Stream ids exhausted: this connection takes no more streams; another one will.
      log_->info("pool={} conn={} stream ids exhausted", log_name(), id_);
      goaway_received_ = true;
      owner_.Requeue(std::move(call), false);
    } else {
      owner_.Finish(std::move(call),
                    Result(FailureReason::kInvalidRequest,
                           absl::InvalidArgumentError(
                               absl::StrCat("cannot submit the request: ", nghttp2_strerror(id)))));
    }
    return;
  }
  call->OnStreamStarted(this, id);
  streams_.emplace(id, std::move(call));
}

std::unique_ptr<Call> Connection::Cancel(Call* call) {
  std::unique_ptr<Call> owned = Extract(call->stream_id());
  if (owned == nullptr) return nullptr;
  if (session_ != nullptr && state_ != State::kClosed) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, owned->stream_id(), NGHTTP2_CANCEL);
    if (owned->headers_sent()) reset_streams_.insert(owned->stream_id());
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
             absl::StrCat("connection to ", authority(), " finished after GOAWAY")),
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
      Fail(absl::UnavailableError(absl::StrCat("HTTP/2 protocol error from ", authority(), ": ",
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
  absl::Duration interval = env_.options->ping_interval;
  absl::Duration timeout = std::min(interval, kMaxPingTimeout);
  if (ping_outstanding_) {
    if (now - ping_sent_ >= timeout) {
      Fail(absl::UnavailableError(absl::StrCat("PING to ", authority(), " not acknowledged within ",
                                               absl::FormatDuration(timeout))),
           true);
    }
    return;
  }
  if (now - last_recv_ >= interval) {
    nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
    ping_outstanding_ = true;
    ping_sent_ = now;
    log_->trace("pool={} conn={} idle, PING sent", log_name(), id_);
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
  FailStreams(reason);
  owner_.OnConnectionClosed(this, reason, was_ready, transient);
}

void Connection::FailStreams(const absl::Status& reason) {
  // Decide the fate of every stream: never sent, or provably not processed -> replay;
  // otherwise the server may have processed it.
  std::vector<int32_t> ids;
  for (const auto& [id, call] : streams_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (int32_t id : ids) {
    std::unique_ptr<Call> call = Extract(id);
    if (!call->headers_sent()) {
      owner_.Requeue(std::move(call), false);
    } else if (goaway_received_ && id > goaway_last_stream_id_) {
      owner_.Requeue(std::move(call), true);
    } else {
      owner_.Finish(
          std::move(call),
          Result(FailureReason::kConnectionLost,
                 absl::UnavailableError(absl::StrCat(
                     reason.message(), "; the request was sent and ", kMayHaveBeenDelivered))));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// nghttp2 callbacks

int Connection::OnFrameRecvCb(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept {
  Self(user)->OnFrameRecv(*frame);
  return 0;
}

void Connection::OnFrameRecv(const nghttp2_frame& frame) {
  switch (frame.hd.type) {
    case NGHTTP2_SETTINGS:
      if ((frame.hd.flags & NGHTTP2_FLAG_ACK) == 0) OnSettings();
      break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      if (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (Call* call = Find(frame.hd.stream_id)) call->OnResponseComplete();
      }
      break;
    case NGHTTP2_PING:
      if (frame.hd.flags & NGHTTP2_FLAG_ACK) ping_outstanding_ = false;
      break;
    case NGHTTP2_GOAWAY:
      OnGoaway(frame.goaway);
      break;
    default:
      break;
  }
}

void Connection::OnSettings() {
  if (state_ != State::kAwaitingSettings) {
    owner_.ScheduleDispatch();  // the stream limit may have grown
    return;
  }
  state_ = State::kReady;
  evtimer_del(connect_timer_);
  ping_timer_ = event_new(env_.base, -1, EV_PERSIST, PingTimerCb, this);
  absl::Duration period =
      std::max(absl::Milliseconds(10), std::min(env_.options->ping_interval, kMaxPingTimeout) / 4);
  timeval tv = AsTimeval(period);
  evtimer_add(ping_timer_, &tv);
  owner_.OnConnectionReady(this);
}

void Connection::OnGoaway(const nghttp2_goaway& goaway) {
  goaway_received_ = true;
  goaway_last_stream_id_ = std::min(goaway_last_stream_id_, goaway.last_stream_id);
  std::string debug(reinterpret_cast<const char*>(goaway.opaque_data),
                    std::min<size_t>(goaway.opaque_data_len, 200));
  log_->info("pool={} conn={} GOAWAY last_stream_id={} error={} debug='{}'", log_name(), id_,
             goaway.last_stream_id, Http2ErrorName(goaway.error_code), log::JsonEscape(debug));
  owner_.ScheduleDispatch();  // open a replacement if requests wait
}

int Connection::OnFrameSendCb(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept {
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (Call* call = Self(user)->Find(frame->hd.stream_id)) call->OnHeadersSent();
  }
  return 0;
}

int Connection::OnFrameNotSendCb(nghttp2_session*, const nghttp2_frame* frame, int error,
                                 void* user) noexcept {
  Self(user)->OnFrameNotSend(*frame, error);
  return 0;
}

void Connection::OnFrameNotSend(const nghttp2_frame& frame, int error) {
  if (frame.hd.type != NGHTTP2_HEADERS || frame.headers.cat != NGHTTP2_HCAT_REQUEST) return;
  std::unique_ptr<Call> call = Extract(frame.hd.stream_id);
  if (call == nullptr) return;
  if (error == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED ||
      error == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE || error == NGHTTP2_ERR_STREAM_CLOSED ||
      error == NGHTTP2_ERR_STREAM_CLOSING || error == NGHTTP2_ERR_SESSION_CLOSING) {
    owner_.Requeue(std::move(call), false);
  } else {
    owner_.Finish(
        std::move(call),
        Result(FailureReason::kNotSent,
               absl::InternalError(absl::StrCat("request not sent: ", nghttp2_strerror(error)))));
  }
}

int Connection::OnHeaderCb(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                           size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                           void* user) noexcept {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Call* call = Self(user)->Find(frame->hd.stream_id);
  if (call == nullptr) return 0;
  call->OnResponseHeader(absl::string_view(reinterpret_cast<const char*>(name), namelen),
                         absl::string_view(reinterpret_cast<const char*>(value), valuelen));
  return 0;
}

int Connection::OnDataChunkCb(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                              size_t len, void* user) noexcept {
  Self(user)->OnDataChunk(stream_id, absl::string_view(reinterpret_cast<const char*>(data), len));
  return 0;
}

void Connection::OnDataChunk(int32_t stream_id, absl::string_view data) {
  Call* call = Find(stream_id);
  if (call == nullptr || call->AppendBody(data, kMaxResponseBody)) return;
  std::unique_ptr<Call> owned = Extract(stream_id);
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  reset_streams_.insert(stream_id);
  owner_.Finish(std::move(owned),
                Result(FailureReason::kResponseTooLarge,
                       absl::InternalError(absl::StrCat("response body larger than ",
                                                        kMaxResponseBody, " bytes"))));
}

int Connection::OnStreamCloseCb(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                void* user) noexcept {
  Self(user)->OnStreamClose(stream_id, error_code);
  return 0;
}

void Connection::OnStreamClose(int32_t stream_id, uint32_t error_code) {
  if (reset_streams_.erase(stream_id) > 0) {
    owner_.ScheduleDispatch();
    return;
  }
  std::unique_ptr<Call> call = Extract(stream_id);
  if (call == nullptr) return;
  owner_.ScheduleDispatch();  // a slot is free
  if (call->response_complete()) {
    Response response = call->TakeResponse();
    owner_.Finish(std::move(call), std::move(response));
  } else if (error_code == NGHTTP2_REFUSED_STREAM) {
    // The server did not process it (RFC 9113 8.7): safe to send again.
    const bool sent = call->headers_sent();
    owner_.Requeue(std::move(call), sent);
  } else if (!call->headers_sent()) {
    owner_.Requeue(std::move(call), false);
  } else {
    owner_.Finish(
        std::move(call),
        Result(FailureReason::kStreamReset,
               absl::UnavailableError(absl::StrCat(
                   "stream reset by ", authority(), " (", Http2ErrorName(error_code),
                   ") before the response completed; the request ", kMayHaveBeenDelivered))));
  }
}

ssize_t Connection::ReadBodyCb(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                               uint32_t* data_flags, nghttp2_data_source*, void* user) noexcept {
  Call* call = Self(user)->Find(stream_id);
  if (call == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  bool eof = false;
  size_t n = call->ReadBody(buf, length, &eof);
  if (eof) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace pushgate::http2
