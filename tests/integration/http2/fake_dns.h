// A DNS server on 127.0.0.1 (UDP) for resolver tests: it answers every A query for its name with
// 127.0.0.1, AAAA queries with no records, and anything else (or every query, when told to
// refuse) with NXDOMAIN. It counts the queries it received.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace pushgate::http2::testing {

class FakeDns {
 public:
  // `name`: the one name it knows (lower case); `nxdomain_for_all`: answer NXDOMAIN to everything
  // (a resolver that does not know the name, as a host's resolver asked for a container's).
  static absl::StatusOr<std::unique_ptr<FakeDns>> Start(std::string name, bool nxdomain_for_all);
  ~FakeDns();
  FakeDns(const FakeDns&) = delete;
  FakeDns& operator=(const FakeDns&) = delete;

  int port() const { return port_; }
  int queries() const { return queries_.load(); }

 private:
  FakeDns(int fd, int port, std::string name, bool nxdomain_for_all);
  void Loop();

  const int fd_;
  const int port_;
  const std::string name_;
  const bool nxdomain_for_all_;
  std::atomic<int> queries_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pushgate::http2::testing
