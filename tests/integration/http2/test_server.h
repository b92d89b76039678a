// A minimal HTTP/2 TLS server for the pool's integration tests (nghttp2 + libevent
// bufferevent_openssl on its own loop thread). Not the APNs/FCM emulator: it answers every request
// with 200 (or the status in the request's "x-status" header), echoes the body, and records what
// it processed; a request with an "x-reset: <code>" header is processed, then its stream reset
// with that HTTP/2 error code. Faults: response delay, GOAWAY after N requests, abrupt close after
// N requests, no h2 in ALPN, no PING acknowledgement.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace pushgate::http2::testing {

// A self-signed certificate (usable as its own CA) with SAN IP:127.0.0.1 and DNS:localhost.
struct TestCert {
  std::string cert_file;
  std::string key_file;
};
// Writes <dir>/<name>.crt and <name>.key.
absl::StatusOr<TestCert> MakeSelfSignedCert(const std::string& dir, const std::string& name);

struct TestServerOptions {
  int port = 0;  // 0 = ephemeral
  TestCert cert;
  uint32_t max_concurrent_streams = 100;
  absl::Duration response_delay = absl::ZeroDuration();
  // Per connection: after processing this many requests send GOAWAY with last-stream-id =
  // goaway_last_stream_id, or (-1) the id of that last processed request; later streams are
  // not processed. 0 = never.
  int goaway_after_requests = 0;
  int32_t goaway_last_stream_id = -1;
  // Per connection: after processing this many requests close the TCP connection at once
  // (pending responses are never sent). 0 = never.
  int close_after_requests = 0;
  bool negotiate_h2 = true;  // false: ALPN is not acknowledged (an HTTP/1.1-only server)
  bool ack_pings = true;
  std::string client_ca_file;  // non-empty: require a client certificate signed by it
};

struct ReceivedRequest {
  int connection = 0;  // 1-based accept order
  int32_t stream_id = 0;
  std::string method, path, authority;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string client_subject;  // client certificate subject, "" without one

  std::string Header(const std::string& name) const;
};

class TestServer {
 public:
  static absl::StatusOr<std::unique_ptr<TestServer>> Start(TestServerOptions options);
  ~TestServer();  // Stop()
  // Closes the listener and every connection; idempotent.
  void Stop();

  int port() const { return port_; }
  std::string base_url() const { return "https://127.0.0.1:" + std::to_string(port_); }

  std::vector<ReceivedRequest> requests() const;
  int connections_accepted() const { return connections_accepted_.load(); }
  // Highest number of simultaneously open client streams seen on any one connection.
  int max_open_streams_seen() const { return max_open_streams_.load(); }
  int pings_received() const { return pings_received_.load(); }
  // Wait until at least `n` connections were accepted / PINGs received; the failure says how
  // many arrived.
  ::testing::AssertionResult WaitForConnections(int n, absl::Duration timeout) const {
    return WaitFor(connections_accepted_, n, timeout, "connections");
  }
  ::testing::AssertionResult WaitForPings(int n, absl::Duration timeout) const {
    return WaitFor(pings_received_, n, timeout, "PINGs");
  }

  class Impl;

 private:
  TestServer() = default;
  void Notify();  // a count changed
  ::testing::AssertionResult WaitFor(const std::atomic<int>& count, int n, absl::Duration timeout,
                                     const char* what) const;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::atomic<int> connections_accepted_{0};
  std::atomic<int> max_open_streams_{0};
  std::atomic<int> pings_received_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<ReceivedRequest> requests_;
  friend class Impl;
};

}  // namespace pushgate::http2::testing
