// The emulator's HTTP/2 server, after the design of nghttp2's libevent-server.c: libevent owns
// the socket and TLS (bufferevent_openssl), nghttp2 only sees bytes (mem_recv / send callback).
// Each worker thread runs one event_base with its own listener on the shared port.
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/shutdown.h"
#include "pusher/emulator/internal.h"

namespace pushgate::pusher::emulator::internal {
namespace {

constexpr size_t kOutputHighWater = size_t{256} * 1024;
constexpr size_t kMaxBody = size_t{1024} * 1024;

struct Connection;

struct Stream {
  Connection* conn = nullptr;
  int32_t id = 0;
  H2Request req;
  H2Response resp;
  size_t resp_offset = 0;
  event* timer = nullptr;
  bool refused = false;  // above the GOAWAY last-stream-id, or the connection is being dropped
  bool answered = false;
  ~Stream() {
    if (timer != nullptr) event_free(timer);
  }
};

struct Connection {
  H2Server::Worker* worker = nullptr;
  State* state = nullptr;
  bufferevent* bev = nullptr;
  nghttp2_session* session = nullptr;
  uint64_t id = 0;
  PeerAuth peer;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams;
  int streams_begun = 0;
  int streams_processed = 0;
  int delayed = 0;                  // answers waiting on a delay timer
  int32_t goaway_last_stream = -1;  // >= 0 once a fault GOAWAY was submitted
  bool dropping = false;
  bool lingering = false;  // all sent, write side shut: reading until the peer closes
  event* linger_timer = nullptr;
  bool closed = false;
};

void DeleteConnection(Connection* c);

}  // namespace

struct H2Server::Worker {
  State* state = nullptr;
  SSL_CTX* ssl_ctx = nullptr;
  event_base* base = nullptr;
  evconnlistener* listener = nullptr;
  event* stop_event = nullptr;  // activated from Stop(): breaks the loop even before it ran
  std::thread thread;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections;
};

namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto logger = log::Get("pusher.emulator");
  return logger;
}

// ----- nghttp2 callbacks (noexcept trampolines)

ssize_t SendCallback(nghttp2_session*, const uint8_t* data, size_t length, int,
                     void* user_data) noexcept {
  auto* c = static_cast<Connection*>(user_data);
  evbuffer* out = bufferevent_get_output(c->bev);
  if (evbuffer_get_length(out) >= kOutputHighWater) return NGHTTP2_ERR_WOULDBLOCK;
  bufferevent_write(c->bev, data, length);
  return static_cast<ssize_t>(length);
}

ssize_t ReadResponseBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                         uint32_t* data_flags, nghttp2_data_source* source, void*) noexcept {
  auto* s = static_cast<Stream*>(source->ptr);
  const size_t left = s->resp.body.size() - s->resp_offset;
  const size_t n = std::min(left, length);
  std::copy_n(s->resp.body.data() + s->resp_offset, n, buf);
  s->resp_offset += n;
  if (s->resp_offset == s->resp.body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

nghttp2_nv Nv(const std::string& name, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

void SubmitResponse(Stream* s) {
  Connection* c = s->conn;
  s->answered = true;
  const std::string status = std::to_string(s->resp.status);
  static const std::string kStatus = ":status";
  static const std::string kContentLength = "content-length";
  const std::string length = std::to_string(s->resp.body.size());
  std::vector<nghttp2_nv> nva;
  nva.reserve(s->resp.headers.size() + 2);
  nva.push_back(Nv(kStatus, status));
  for (const auto& [k, v] : s->resp.headers) nva.push_back(Nv(k, v));
  nva.push_back(Nv(kContentLength, length));
  nghttp2_data_provider provider;
  provider.source.ptr = s;
  provider.read_callback = ReadResponseBody;
  int rv = nghttp2_submit_response(c->session, s->id, nva.data(), nva.size(),
                                   s->resp.body.empty() ? nullptr : &provider);
  if (rv != 0) {
    Log()->warn("event=submit_response_failed conn={} stream={} error={}", c->id, s->id,
                nghttp2_strerror(rv));
  }
}

// Sends what nghttp2 has queued; closes the connection when the session is done.
bool SessionSend(Connection* c) {
  int rv = nghttp2_session_send(c->session);
  if (rv != 0) {
    Log()->debug("event=session_send_failed conn={} error={}", c->id, nghttp2_strerror(rv));
    DeleteConnection(c);
    return false;
  }
  return true;
}

void OnLingerTimeout(evutil_socket_t, short, void* arg) noexcept {
  DeleteConnection(static_cast<Connection*>(arg));
}

// Once everything is sent: shut the write side and read until the peer closes (or 2 s), so
// that unread bytes from the peer do not turn the close into a TCP reset that could destroy
// the last answers / the GOAWAY before the peer read them.
void MaybeClose(Connection* c) {
  if (c->closed || c->lingering) return;
  const bool done =
      (c->dropping && c->delayed == 0) ||
      (nghttp2_session_want_read(c->session) == 0 && nghttp2_session_want_write(c->session) == 0);
  if (!done || evbuffer_get_length(bufferevent_get_output(c->bev)) != 0) return;
  c->lingering = true;
  shutdown(bufferevent_getfd(c->bev), SHUT_WR);
  c->linger_timer = evtimer_new(c->worker->base, OnLingerTimeout, c);
  timeval tv{2, 0};
  evtimer_add(c->linger_timer, &tv);
}

void OnDelayTimer(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Stream*>(arg);
  Connection* c = s->conn;
  event_free(s->timer);
  s->timer = nullptr;
  --c->delayed;
  SubmitResponse(s);
  if (SessionSend(c)) MaybeClose(c);
}

void ProcessRequest(Connection* c, Stream* s) {
  if (c->dropping) return;  // lost in flight: no answer, the connection is about to close
  if (s->refused) {
    ++c->state->streams_refused;
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
    return;
  }
  s->req.connection_id = c->id;
  s->req.stream_id = s->id;
  s->req.peer = &c->peer;
  ReceivedRequest rec;
  s->resp = HandleRequest(s->req, *c->state, &rec);
  rec.time = c->state->Now();
  rec.connection_id = c->id;
  rec.stream_id = s->id;
  c->state->Record(std::move(rec));
  ++c->streams_processed;
  if (c->state->TakeDrop(c->streams_processed)) {
    c->dropping = true;
    ++c->state->connections_dropped;
    Log()->info("event=fault_drop conn={} processed={}", c->id, c->streams_processed);
  }
  const int delay = c->state->DelayMs();
  if (delay > 0) {
    ++c->delayed;
    s->timer = evtimer_new(c->worker->base, OnDelayTimer, s);
    timeval tv{delay / 1000, suseconds_t{delay % 1000} * 1000};
    evtimer_add(s->timer, &tv);
    return;
  }
  SubmitResponse(s);
}

int OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) noexcept {
  auto* c = static_cast<Connection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto s = std::make_unique<Stream>();
  s->conn = c;
  s->id = frame->hd.stream_id;
  if (c->dropping || (c->goaway_last_stream >= 0 && s->id > c->goaway_last_stream)) {
    s->refused = true;
  } else {
    ++c->streams_begun;
    if (c->goaway_last_stream < 0 && c->state->TakeGoaway(c->streams_begun)) {
      c->goaway_last_stream = s->id;
      ++c->state->goaways_sent;
      static const char kReason[] = "{\"reason\":\"Shutdown\"}";
      nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR,
                            reinterpret_cast<const uint8_t*>(kReason), sizeof(kReason) - 1);
      Log()->info("event=fault_goaway conn={} last_stream_id={}", c->id, s->id);
    }
  }
  Stream* raw = s.get();
  c->streams.emplace(raw->id, std::move(s));
  nghttp2_session_set_stream_user_data(session, raw->id, raw);
  return 0;
}

int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
             size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
             void* user_data) noexcept {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto* s =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (s == nullptr || s->refused) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":method") {
    s->req.method = std::move(v);
  } else if (n == ":path") {
    s->req.path = std::move(v);
  } else if (n == ":authority") {
    s->req.authority = std::move(v);
  } else if (!n.empty() && n[0] == ':') {
    // :scheme: nghttp2 already checked it is present
  } else {
    s->req.headers.emplace_back(std::string(n), std::move(v));  // nghttp2 enforces lower case
  }
  return 0;
}

int OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                size_t len, void*) noexcept {
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (s == nullptr || s->refused) return 0;
  if (s->req.body.size() + len > kMaxBody) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_REFUSED_STREAM);
    s->refused = true;
    return 0;
  }
  s->req.body.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) noexcept {
  auto* c = static_cast<Connection*>(user_data);
  if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    auto* s =
        static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
    if (s != nullptr && !s->answered) ProcessRequest(c, s);
  }
  return 0;
}

int OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t, void* user_data) noexcept {
  auto* c = static_cast<Connection*>(user_data);
  auto it = c->streams.find(stream_id);
  if (it == c->streams.end()) return 0;
  if (it->second->timer != nullptr) --c->delayed;  // reset by the client before the answer
  c->streams.erase(it);
  return 0;
}

// ----- libevent callbacks

void OnRead(bufferevent* bev, void* arg) noexcept {
  auto* c = static_cast<Connection*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  if (c->lingering) {
    evbuffer_drain(in, evbuffer_get_length(in));
    return;
  }
  if (c->dropping) {
    evbuffer_drain(in, evbuffer_get_length(in));
    MaybeClose(c);
    return;
  }
  const size_t len = evbuffer_get_length(in);
  unsigned char* data = evbuffer_pullup(in, -1);
  ssize_t rv = nghttp2_session_mem_recv(c->session, data, len);
  if (rv < 0) {
    Log()->debug("event=session_recv_failed conn={} error={}", c->id,
                 nghttp2_strerror(static_cast<int>(rv)));
    DeleteConnection(c);
    return;
  }
  evbuffer_drain(in, static_cast<size_t>(rv));
  if (SessionSend(c)) MaybeClose(c);
}

void OnWrite(bufferevent* bev, void* arg) noexcept {
  auto* c = static_cast<Connection*>(arg);
  if (c->lingering) return;
  if (c->dropping) {
    MaybeClose(c);
    return;
  }
  if (nghttp2_session_want_write(c->session) != 0) {
    if (!SessionSend(c)) return;
  }
  MaybeClose(c);
}

void StartSession(Connection* c) {
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_send_callback(cbs, SendCallback);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, OnFrameRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, OnStreamClose);
  nghttp2_session_callbacks_set_on_header_callback(cbs, OnHeader);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, OnBeginHeaders);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, OnDataChunk);
  nghttp2_session_server_new(&c->session, cbs, c);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
       static_cast<uint32_t>(c->state->MaxConcurrentStreams())},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
  };
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings,
                          sizeof(settings) / sizeof(settings[0]));
  nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 16 << 20);
}

void OnEvent(bufferevent* bev, short events, void* arg) noexcept {
  auto* c = static_cast<Connection*>(arg);
  if ((events & BEV_EVENT_CONNECTED) != 0) {
    SSL* ssl = bufferevent_openssl_get_ssl(bev);
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn == nullptr || alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
      ++c->state->alpn_rejected;
      Log()->info("event=alpn_not_h2 conn={}", c->id);
      DeleteConnection(c);
      return;
    }
    c->peer = PeerAuthFromSsl(ssl, c->state->options());
    StartSession(c);
    if (SessionSend(c)) OnRead(bev, c);  // bytes may already be waiting
    return;
  }
  if ((events & BEV_EVENT_ERROR) != 0 && c->session == nullptr) {
    ++c->state->tls_failures;
    unsigned long e = bufferevent_get_openssl_error(bev);
    char buf[256] = "";
    if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
    Log()->info("event=tls_handshake_failed conn={} error={}", c->id, buf);
  }
  DeleteConnection(c);
}

void DeleteConnection(Connection* c) {
  if (c->closed) return;
  c->closed = true;
  if (c->linger_timer != nullptr) event_free(c->linger_timer);
  c->linger_timer = nullptr;
  if (c->session != nullptr) nghttp2_session_del(c->session);
  c->session = nullptr;
  c->streams.clear();
  if (c->bev != nullptr) {
    SSL* ssl = bufferevent_openssl_get_ssl(c->bev);
    if (ssl != nullptr) SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
    bufferevent_free(c->bev);
    c->bev = nullptr;
  }
  --c->state->connections_open;
  c->worker->connections.erase(c);  // destroys c
}

void OnAccept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) noexcept {
  auto* w = static_cast<H2Server::Worker*>(arg);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  SSL* ssl = SSL_new(w->ssl_ctx);
  if (ssl == nullptr) {
    evutil_closesocket(fd);
    return;
  }
  auto conn = std::make_unique<Connection>();
  Connection* c = conn.get();
  c->worker = w;
  c->state = w->state;
  c->id = w->state->next_connection_id.fetch_add(1);
  c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (c->bev == nullptr) {
    SSL_free(ssl);
    evutil_closesocket(fd);
    return;
  }
  ++w->state->connections_accepted;
  ++w->state->connections_open;
  w->connections.emplace(c, std::move(conn));
  bufferevent_setcb(c->bev, OnRead, OnWrite, OnEvent, c);
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

absl::StatusOr<int> BindListenSocket(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  int rv = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rv != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve listen address ", host, ": ", gai_strerror(rv)));
  }
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0) break;
    error = std::strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port, ": ", error));
  }
  return fd;
}

void OnStopEvent(evutil_socket_t, short, void* arg) noexcept {
  event_base_loopbreak(static_cast<event_base*>(arg));
}

int BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

}  // namespace

H2Server::H2Server(State* state, SSL_CTX* ssl_ctx) : state_(state), ssl_ctx_(ssl_ctx) {
  static const bool threads_ready = [] { return evthread_use_pthreads() == 0; }();
  (void)threads_ready;
}

H2Server::~H2Server() { Stop(); }

absl::StatusOr<int> H2Server::Start(const std::string& host, int port, int threads) {
  int bound_port = port;
  for (int i = 0; i < std::max(1, threads); ++i) {
    auto fd = BindListenSocket(host, bound_port);
    if (!fd.ok()) {
      Stop();
      return fd.status();
    }
    if (i == 0) bound_port = BoundPort(*fd);
    auto w = std::make_unique<Worker>();
    w->state = state_;
    w->ssl_ctx = ssl_ctx_;
    w->base = event_base_new();
    w->listener = evconnlistener_new(w->base, OnAccept, w.get(), LEV_OPT_CLOSE_ON_FREE, -1, *fd);
    w->stop_event = event_new(w->base, -1, 0, OnStopEvent, w->base);
    if (w->base == nullptr || w->listener == nullptr || w->stop_event == nullptr) {
      close(*fd);
      Stop();
      return absl::InternalError("libevent: cannot create the listener");
    }
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) {
    Worker* raw = w.get();
    w->thread = std::thread([raw] {
      BlockSigpipeInThisThread();  // a client gone mid-write must not kill the process
      event_base_loop(raw->base, EVLOOP_NO_EXIT_ON_EMPTY);
    });
  }
  return bound_port;
}

void H2Server::Stop() {
  for (auto& w : workers_) {
    if (w->stop_event != nullptr) event_active(w->stop_event, EV_READ, 0);
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
    // Loops stopped. The listener goes first: the loop run below would otherwise accept a client
    // that reconnects at once (the pusher keeps connections open) and leak that connection.
    if (w->listener != nullptr) evconnlistener_free(w->listener);
    w->listener = nullptr;
    // Tear connections down on this thread.
    while (!w->connections.empty()) DeleteConnection(w->connections.begin()->first);
    // bufferevent_free defers the release to the loop: let it run once.
    if (w->base != nullptr) event_base_loop(w->base, EVLOOP_NONBLOCK);
    if (w->stop_event != nullptr) event_free(w->stop_event);
    w->stop_event = nullptr;
    if (w->base != nullptr) event_base_free(w->base);
    w->base = nullptr;
  }
  workers_.clear();
}

}  // namespace pushgate::pusher::emulator::internal
