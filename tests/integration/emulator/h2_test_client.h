// A tiny blocking HTTP/2-over-TLS client for the emulator's tests: one connection, requests
// submitted up front, then run until every stream closed (or the connection did).
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

struct nghttp2_session;

namespace pushgate::testing {

struct H2ClientOptions {
  int port = 0;
  std::string ca_pem;     // server certificate to trust
  std::string cert_file;  // client certificate (APNs certificate auth), optional
  std::string key_file;
  bool offer_h2 = true;  // false: offer only http/1.1 in ALPN
};

struct H2Response {
  int status = 0;
  std::multimap<std::string, std::string> headers;
  std::string body;
  bool closed = false;
  uint32_t error_code = 0;  // RST_STREAM / GOAWAY refusal code; 0 when answered cleanly

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class H2TestClient {
 public:
  H2TestClient() = default;
  ~H2TestClient();
  H2TestClient(const H2TestClient&) = delete;
  H2TestClient& operator=(const H2TestClient&) = delete;

  // TCP + TLS handshake (verifying the server against ca_pem) + ALPN h2 + connection preface.
  absl::Status Connect(const H2ClientOptions& options);

  // Queues one request; returns its stream id.
  int32_t Submit(const std::string& method, const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& headers,
                 const std::string& body);

  // Runs until every submitted stream closed or the server closed the connection.
  // DEADLINE_EXCEEDED on timeout (naming how many streams are still open).
  absl::Status Run(absl::Duration timeout);

  // Submit + Run for one request.
  H2Response Request(const std::string& method, const std::string& path,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::string& body, absl::Duration timeout = absl::Seconds(5));

  const H2Response& response(int32_t stream_id) { return responses_[stream_id]; }
  bool goaway_received() const { return goaway_received_; }
  int32_t goaway_last_stream_id() const { return goaway_last_stream_id_; }
  bool connection_closed() const { return connection_closed_; }
  uint32_t remote_max_concurrent_streams() const;

  // nghttp2 callbacks reach these.
  std::map<int32_t, H2Response> responses_;
  std::map<int32_t, std::string> bodies_to_send_;
  std::map<int32_t, size_t> body_offsets_;
  int open_streams_ = 0;
  bool goaway_received_ = false;
  int32_t goaway_last_stream_id_ = -1;

 private:
  absl::Status Flush(absl::Time deadline);

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  nghttp2_session* session_ = nullptr;
  bool connection_closed_ = false;
};

}  // namespace pushgate::testing
