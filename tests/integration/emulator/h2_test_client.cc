#include "tests/integration/emulator/h2_test_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace pushgate::testing {
namespace {

std::string SslError() {
  unsigned long e = ERR_get_error();
  char buf[256] = "no OpenSSL error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

H2TestClient* Self(void* user_data) { return static_cast<H2TestClient*>(user_data); }

int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
             const uint8_t* value, size_t valuelen, uint8_t, void* user_data) noexcept {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  H2Response& r = Self(user_data)->responses_[frame->hd.stream_id];
  std::string n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    r.status = std::stoi(v);
  } else {
    r.headers.emplace(n, v);
  }
  return 0;
}

int OnData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
           void* user_data) noexcept {
  Self(user_data)->responses_[stream_id].body.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                  void* user_data) noexcept {
  H2TestClient* c = Self(user_data);
  H2Response& r = c->responses_[stream_id];
  if (!r.closed) {
    r.closed = true;
    r.error_code = error_code;
    --c->open_streams_;
  }
  return 0;
}

int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) noexcept {
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    Self(user_data)->goaway_received_ = true;
    Self(user_data)->goaway_last_stream_id_ = frame->goaway.last_stream_id;
  }
  return 0;
}

ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags,
                 nghttp2_data_source*, void* user_data) noexcept {
  H2TestClient* c = Self(user_data);
  const std::string& body = c->bodies_to_send_[stream_id];
  size_t& off = c->body_offsets_[stream_id];
  size_t n = std::min(length, body.size() - off);
  std::copy_n(body.data() + off, n, buf);
  off += n;
  if (off == body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace

H2TestClient::~H2TestClient() {
  if (session_ != nullptr) nghttp2_session_del(session_);
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

absl::Status H2TestClient::Connect(const H2ClientOptions& o) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(errno)));
  }
  ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  BIO* bio = BIO_new_mem_buf(o.ca_pem.data(), static_cast<int>(o.ca_pem.size()));
  X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (ca == nullptr) return absl::InvalidArgumentError("bad CA PEM");
  X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca);
  X509_free(ca);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx_, o.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("client cert: ", SslError()));
    }
  }
  static const unsigned char kH2[] = "\x02h2";
  static const unsigned char kH11[] = "\x08http/1.1";
  if (o.offer_h2) {
    SSL_CTX_set_alpn_protos(ctx_, kH2, sizeof(kH2) - 1);
  } else {
    SSL_CTX_set_alpn_protos(ctx_, kH11, sizeof(kH11) - 1);
  }
  ssl_ = SSL_new(ctx_);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
  SSL_set_fd(ssl_, fd_);
  if (SSL_connect(ssl_) != 1) {
    return absl::UnavailableError(absl::StrCat("TLS handshake: ", SslError()));
  }
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
    return absl::UnavailableError("server did not select ALPN h2");
  }
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);

  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, OnData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, OnStreamClose);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, OnFrameRecv);
  nghttp2_session_client_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  return absl::OkStatus();
}

int32_t H2TestClient::Submit(const std::string& method, const std::string& path,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             const std::string& body) {
  std::vector<std::pair<std::string, std::string>> all = {
      {":method", method}, {":scheme", "https"}, {":path", path}};
  bool has_authority = false;
  for (const auto& h : headers) has_authority = has_authority || h.first == ":authority";
  if (!has_authority) all.emplace_back(":authority", "127.0.0.1");
  all.insert(all.end(), headers.begin(), headers.end());
  std::vector<nghttp2_nv> nva;
  nva.reserve(all.size());
  for (auto& [k, v] : all) {
    nva.push_back({reinterpret_cast<uint8_t*>(k.data()), reinterpret_cast<uint8_t*>(v.data()),
                   k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider{};
  provider.read_callback = ReadBody;
  int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                      body.empty() ? nullptr : &provider, nullptr);
  if (id > 0) {
    bodies_to_send_[id] = body;
    responses_[id];
    ++open_streams_;
  }
  return id;
}

absl::Status H2TestClient::Flush(absl::Time deadline) {
  for (;;) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return absl::InternalError(nghttp2_strerror(static_cast<int>(n)));
    if (n == 0) return absl::OkStatus();
    size_t off = 0;
    while (off < static_cast<size_t>(n)) {
      int w = SSL_write(ssl_, data + off, static_cast<int>(n - off));
      if (w > 0) {
        off += static_cast<size_t>(w);
        continue;
      }
      int err = SSL_get_error(ssl_, w);
      if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) {
        connection_closed_ = true;
        return absl::OkStatus();
      }
      pollfd p{fd_, static_cast<short>(err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
      int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (ms <= 0 || poll(&p, 1, ms) <= 0) return absl::DeadlineExceededError("write timed out");
    }
  }
}

absl::Status H2TestClient::Run(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  uint8_t buf[16384];
  while (!connection_closed_) {
    absl::Status s = Flush(deadline);
    if (!s.ok()) return s;
    if (open_streams_ <= 0 && !nghttp2_session_want_write(session_)) return absl::OkStatus();
    if (SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (ms <= 0 || poll(&p, 1, ms) == 0) {
        return absl::DeadlineExceededError(
            absl::StrCat("no answer in time: ", open_streams_, " stream(s) still open"));
      }
    }
    int r = SSL_read(ssl_, buf, sizeof(buf));
    if (r > 0) {
      ssize_t rv = nghttp2_session_mem_recv(session_, buf, static_cast<size_t>(r));
      if (rv < 0) return absl::InternalError(nghttp2_strerror(static_cast<int>(rv)));
      continue;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) continue;
    ERR_clear_error();
    connection_closed_ = true;
  }
  return absl::OkStatus();
}

H2Response H2TestClient::Request(const std::string& method, const std::string& path,
                                 const std::vector<std::pair<std::string, std::string>>& headers,
                                 const std::string& body, absl::Duration timeout) {
  int32_t id = Submit(method, path, headers, body);
  absl::Status s = Run(timeout);
  if (!s.ok()) {
    H2Response r;
    r.body = std::string(s.message());
    return r;
  }
  return responses_[id];
}

uint32_t H2TestClient::remote_max_concurrent_streams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

}  // namespace pushgate::testing
