// Name resolution for one pool: an evdns base configured from resolv.conf that asks one
// nameserver at a time, moving to the next one after a failed lookup (in a loop).
//
// Threads: created, used and destroyed on (or before) the pool's loop thread. Owns the evdns
// base; the event base must outlive it.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct event_base;
struct evdns_base;

namespace pushgate::http2 {

class Resolver final {
 public:
  // `host_is_ip`: nothing to resolve, resolv.conf is not read. `log_name` names the pool.
  static absl::StatusOr<std::unique_ptr<Resolver>> Create(event_base* base, std::string host,
                                                          bool host_is_ip, std::string resolv_conf,
                                                          std::string log_name);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  evdns_base* dns() const { return dns_; }
  // A lookup failed: the next lookups ask the next nameserver of resolv.conf (when it lists
  // several).
  void OnLookupFailed();

 private:
  Resolver(evdns_base* dns, std::string host, std::string resolv_conf, std::string log_name);
  void ReadNameservers();
  void UseNameserver(size_t index);

  evdns_base* const dns_;
  const std::string host_, resolv_conf_, log_name_;
  // resolv.conf's nameservers, in order, when there are several; dns_ asks only the current one.
  std::vector<sockaddr_storage> nameservers_;
  size_t nameserver_ = 0;
};

}  // namespace pushgate::http2
