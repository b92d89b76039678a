#include "tests/integration/http2/test_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pushgate::http2::testing {
namespace {

std::string OpenSslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

bool AddExt(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

}  // namespace

absl::StatusOr<TestCert> MakeSelfSignedCert(const std::string& dir, const std::string& name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) return absl::InternalError("EVP_EC_gen: " + OpenSslError());
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  static std::atomic<long> serial{1};
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial.fetch_add(1) + time(nullptr));
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, subject);
  bool ok = AddExt(cert, NID_basic_constraints, "critical,CA:TRUE") &&
            AddExt(cert, NID_key_usage, "critical,digitalSignature,keyCertSign") &&
            AddExt(cert, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") &&
            AddExt(cert, NID_subject_key_identifier, "hash") &&
            X509_sign(cert, key, EVP_sha256()) > 0;
  TestCert out{absl::StrCat(dir, "/", name, ".crt"), absl::StrCat(dir, "/", name, ".key")};
  if (ok) {
    FILE* f = fopen(out.cert_file.c_str(), "w");
    ok = f != nullptr && PEM_write_X509(f, cert) == 1;
    if (f != nullptr) fclose(f);
    f = fopen(out.key_file.c_str(), "w");
    ok = ok && f != nullptr &&
         PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (f != nullptr) fclose(f);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) return absl::InternalError("cannot make test certificate: " + OpenSslError());
  return out;
}

std::string ReceivedRequest::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

class TestServer::Impl {
 public:
  struct Session;
  struct Stream {
    ReceivedRequest request;
    event* timer = nullptr;
    std::string response_body;
    size_t offset = 0;
    Session* session = nullptr;
  };
  struct Session {
    Impl* server = nullptr;
    int number = 0;
    bufferevent* bev = nullptr;
    SSL* ssl = nullptr;
    nghttp2_session* h2 = nullptr;
    std::map<int32_t, std::unique_ptr<Stream>> streams;
    int open_streams = 0;
    int processed = 0;
    bool goaway_submitted = false;
    int32_t goaway_last = INT32_MAX;
    bool close_requested = false;
  };

  Impl(TestServer* owner, TestServerOptions options)
      : owner_(owner), options_(std::move(options)) {}

  absl::Status Init() {
    static std::once_flag once;
    std::call_once(once, [] { evthread_use_pthreads(); });
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx_, options_.cert.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, options_.cert.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return absl::InternalError("server certificate: " + OpenSslError());
    }
    if (!options_.client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_, options_.client_ca_file.c_str(), nullptr) != 1) {
        return absl::InternalError("client CA: " + OpenSslError());
      }
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    SSL_CTX_set_alpn_select_cb(ctx_, AlpnSelect, this);
    base_ = event_base_new();
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(options_.port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener_ =
        evconnlistener_new_bind(base_, AcceptCb, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                128, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    if (listener_ == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on 127.0.0.1:", options_.port, ": ", strerror(errno)));
    }
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&bound), &len);
    owner_->port_ = ntohs(bound.sin_port);
    stop_event_ = event_new(base_, -1, 0, StopCb, this);
    thread_ = std::thread([this] {
      sigset_t pipe_set;  // a client that went away must not kill the test with SIGPIPE
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
      event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
    });
    return absl::OkStatus();
  }

  void Stop() {
    if (!thread_.joinable()) return;
    event_active(stop_event_, EV_READ, 0);
    thread_.join();
  }

  ~Impl() {
    Stop();
    sessions_.clear();
    if (stop_event_ != nullptr) event_free(stop_event_);
    if (base_ != nullptr) event_base_free(base_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }

 private:
  static int AlpnSelect(SSL*, const unsigned char** out, unsigned char* outlen,
                        const unsigned char* in, unsigned int inlen, void* arg) noexcept {
    auto* self = static_cast<Impl*>(arg);
    if (!self->options_.negotiate_h2) return SSL_TLSEXT_ERR_NOACK;
    if (nghttp2_select_next_protocol(const_cast<unsigned char**>(out), outlen, in, inlen) != 1) {
      return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
  }

  static void StopCb(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<Impl*>(arg);
    if (self->listener_ != nullptr) evconnlistener_free(self->listener_);
    self->listener_ = nullptr;
    while (!self->sessions_.empty()) self->CloseSession(self->sessions_.begin()->first);
    event_base_loopbreak(self->base_);
  }

  static void AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) noexcept {
    auto* self = static_cast<Impl*>(arg);
    auto session = std::make_unique<Session>();
    session->server = self;
    session->number = ++self->owner_->connections_accepted_;
    self->owner_->Notify();
    session->ssl = SSL_new(self->ctx_);
    session->bev =
        bufferevent_openssl_socket_new(self->base_, fd, session->ssl, BUFFEREVENT_SSL_ACCEPTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    bufferevent_setcb(session->bev, ReadCb, WriteCb, EventCb, session.get());
    bufferevent_enable(session->bev, EV_READ | EV_WRITE);
    self->sessions_.emplace(session.get(), std::move(session));
  }

  void CloseSession(Session* s) {
    auto it = sessions_.find(s);
    if (it == sessions_.end()) return;
    for (auto& [id, st] : s->streams) {
      if (st->timer != nullptr) event_free(st->timer);
    }
    s->streams.clear();
    if (s->h2 != nullptr) nghttp2_session_del(s->h2);
    // bufferevent_free defers closing the socket to the loop's finalizers; make the peer see
    // the close now even when the loop is about to stop.
    if (evutil_socket_t fd = bufferevent_getfd(s->bev); fd >= 0) shutdown(fd, SHUT_RDWR);
    bufferevent_free(s->bev);
    sessions_.erase(it);
  }

  static void EventCb(bufferevent*, short what, void* arg) noexcept {
    auto* s = static_cast<Session*>(arg);
    Impl* self = s->server;
    if (what & BEV_EVENT_CONNECTED) {
      if (!self->options_.negotiate_h2) return;  // keep the TLS connection, speak nothing
      self->StartH2(s);
      return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) self->CloseSession(s);
  }

  void StartH2(Session* s) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cbs, OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, OnData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, OnFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, OnStreamClose);
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    if (!options_.ack_pings) nghttp2_option_set_no_auto_ping_ack(opt, 1);
    nghttp2_session_server_new2(&s->h2, cbs, s, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams}};
    nghttp2_submit_settings(s->h2, NGHTTP2_FLAG_NONE, settings, 1);
    Send(s);
  }

  // Returns false when the session was closed.
  bool Send(Session* s) {
    if (s->close_requested) {
      CloseSession(s);
      return false;
    }
    for (;;) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(s->h2, &data);
      if (n < 0) {
        CloseSession(s);
        return false;
      }
      if (n == 0) break;
      bufferevent_write(s->bev, data, n);
    }
    if (nghttp2_session_want_read(s->h2) == 0 && nghttp2_session_want_write(s->h2) == 0 &&
        evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
      CloseSession(s);
      return false;
    }
    return true;
  }

  static void ReadCb(bufferevent* bev, void* arg) noexcept {
    auto* s = static_cast<Session*>(arg);
    if (s->h2 == nullptr) {
      evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
      return;
    }
    evbuffer* in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    unsigned char* data = evbuffer_pullup(in, -1);
    ssize_t n = nghttp2_session_mem_recv(s->h2, data, len);
    if (n < 0) {
      s->server->CloseSession(s);
      return;
    }
    evbuffer_drain(in, n);
    s->server->Send(s);
  }

  static void WriteCb(bufferevent*, void* arg) noexcept {
    auto* s = static_cast<Session*>(arg);
    if (s->h2 != nullptr) s->server->Send(s);
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept {
    auto* s = static_cast<Session*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto st = std::make_unique<Stream>();
    st->session = s;
    st->request.connection = s->number;
    st->request.stream_id = frame->hd.stream_id;
    if (X509* peer = SSL_get_peer_certificate(s->ssl)) {
      char buf[256];
      X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof(buf));
      st->request.client_subject = buf;
      X509_free(peer);
    }
    s->streams[frame->hd.stream_id] = std::move(st);
    ++s->open_streams;
    int seen = s->server->owner_->max_open_streams_.load();
    while (s->open_streams > seen &&
           !s->server->owner_->max_open_streams_.compare_exchange_weak(seen, s->open_streams)) {
    }
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* user) noexcept {
    auto* s = static_cast<Session*>(user);
    auto it = s->streams.find(frame->hd.stream_id);
    if (it == s->streams.end()) return 0;
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    ReceivedRequest& r = it->second->request;
    if (n == ":method") {
      r.method = v;
    } else if (n == ":path") {
      r.path = v;
    } else if (n == ":authority") {
      r.authority = v;
    } else if (n[0] != ':') {
      r.headers.emplace_back(n, v);
    }
    return 0;
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                    void* user) noexcept {
    auto* s = static_cast<Session*>(user);
    auto it = s->streams.find(stream_id);
    if (it != s->streams.end()) {
      it->second->request.body.append(reinterpret_cast<const char*>(data), len);
    }
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept {
    auto* s = static_cast<Session*>(user);
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
      s->server->owner_->pings_received_.fetch_add(1);
      s->server->owner_->Notify();
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      s->server->Process(s, frame->hd.stream_id);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* user) noexcept {
    auto* s = static_cast<Session*>(user);
    auto it = s->streams.find(stream_id);
    if (it == s->streams.end()) return 0;
    if (it->second->timer != nullptr) event_free(it->second->timer);
    s->streams.erase(it);
    --s->open_streams;
    return 0;
  }

  void Process(Session* s, int32_t stream_id) {
    auto it = s->streams.find(stream_id);
    if (it == s->streams.end() || s->close_requested) return;
    Stream* st = it->second.get();
    if (s->goaway_submitted && stream_id > s->goaway_last) {
      nghttp2_submit_rst_stream(s->h2, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_REFUSED_STREAM);
      return;  // not processed
    }
    {
      std::lock_guard<std::mutex> l(owner_->mu_);
      owner_->requests_.push_back(st->request);
    }
    ++s->processed;
    if (uint32_t code = 0; absl::SimpleAtoi(st->request.Header("x-reset"), &code)) {
      nghttp2_submit_rst_stream(s->h2, NGHTTP2_FLAG_NONE, stream_id, code);
      return;  // processed, never answered
    }
    if (options_.close_after_requests > 0 && s->processed >= options_.close_after_requests) {
      s->close_requested = true;
      return;
    }
    if (options_.goaway_after_requests > 0 && s->processed == options_.goaway_after_requests) {
      s->goaway_last =
          options_.goaway_last_stream_id >= 0 ? options_.goaway_last_stream_id : stream_id;
      s->goaway_submitted = true;
      static const char kDebug[] = "{\"reason\":\"test goaway\"}";
      nghttp2_submit_goaway(s->h2, NGHTTP2_FLAG_NONE, s->goaway_last, NGHTTP2_NO_ERROR,
                            reinterpret_cast<const uint8_t*>(kDebug), sizeof(kDebug) - 1);
    }
    if (options_.response_delay > absl::ZeroDuration()) {
      st->timer = evtimer_new(base_, DelayCb, st);
      timeval tv = absl::ToTimeval(options_.response_delay);
      evtimer_add(st->timer, &tv);
    } else {
      Respond(st);
    }
  }

  static void DelayCb(evutil_socket_t, short, void* arg) noexcept {
    auto* st = static_cast<Stream*>(arg);
    Session* s = st->session;
    s->server->Respond(st);
    s->server->Send(s);
  }

  void Respond(Stream* st) {
    Session* s = st->session;
    std::string status = st->request.Header("x-status");
    if (status.empty()) status = "200";
    std::string seq = std::to_string(st->request.stream_id);
    std::string conn = std::to_string(st->request.connection);
    st->response_body = st->request.body;
    auto nv = [](const std::string& n, const std::string& v) {
      return nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                        const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(),
                        v.size(), NGHTTP2_NV_FLAG_NONE};
    };
    static const std::string kStatus = ":status", kPath = "x-path", kStream = "x-stream-id",
                             kConn = "x-connection";
    nghttp2_nv hdrs[] = {nv(kStatus, status), nv(kPath, st->request.path), nv(kStream, seq),
                         nv(kConn, conn)};
    nghttp2_data_provider provider;
    provider.source.ptr = st;
    provider.read_callback = ReadBody;
    nghttp2_submit_response(s->h2, st->request.stream_id, hdrs, 4,
                            st->response_body.empty() ? nullptr : &provider);
  }

  static ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                          nghttp2_data_source* source, void*) noexcept {
    auto* st = static_cast<Stream*>(source->ptr);
    size_t n = std::min(length, st->response_body.size() - st->offset);
    std::copy_n(st->response_body.data() + st->offset, n, buf);
    st->offset += n;
    if (st->offset == st->response_body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  TestServer* owner_;
  TestServerOptions options_;
  SSL_CTX* ctx_ = nullptr;
  event_base* base_ = nullptr;
  evconnlistener* listener_ = nullptr;
  event* stop_event_ = nullptr;
  std::thread thread_;
  std::map<Session*, std::unique_ptr<Session>> sessions_;
};

absl::StatusOr<std::unique_ptr<TestServer>> TestServer::Start(TestServerOptions options) {
  std::unique_ptr<TestServer> server(new TestServer());
  server->impl_ = std::make_unique<Impl>(server.get(), std::move(options));
  if (absl::Status s = server->impl_->Init(); !s.ok()) return s;
  return server;
}

TestServer::~TestServer() { Stop(); }

void TestServer::Stop() {
  if (impl_ != nullptr) impl_->Stop();
}

void TestServer::Notify() {
  std::lock_guard<std::mutex> l(mu_);
  changed_.notify_all();
}

::testing::AssertionResult TestServer::WaitFor(const std::atomic<int>& count, int n,
                                               absl::Duration timeout, const char* what) const {
  std::unique_lock<std::mutex> l(mu_);
  if (changed_.wait_for(l, absl::ToChronoNanoseconds(timeout), [&] { return count.load() >= n; })) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "the server saw " << count.load() << " " << what << " of the " << n
         << " expected within " << absl::FormatDuration(timeout);
}

std::vector<ReceivedRequest> TestServer::requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}

}  // namespace pushgate::http2::testing
