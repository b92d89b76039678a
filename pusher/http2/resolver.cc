#include "pusher/http2/resolver.h"

#include <event2/dns.h>
#include <netinet/in.h>

#include "common/log.h"
#include "common/net.h"

namespace pushgate::http2 {

absl::StatusOr<std::unique_ptr<Resolver>> Resolver::Create(event_base* base, std::string host,
                                                           bool host_is_ip, std::string resolv_conf,
                                                           std::string log_name) {
  evdns_base* dns = evdns_base_new(base, 0);
  if (dns == nullptr) return absl::InternalError("evdns_base_new failed");
  std::unique_ptr<Resolver> resolver(
      new Resolver(dns, std::move(host), std::move(resolv_conf), std::move(log_name)));
  if (!host_is_ip) resolver->ReadNameservers();
  // evdns randomises the letter case of queries (0x20 encoding) by default; some resolvers
  // (podman's aardvark-dns) match names case-sensitively and answer NXDOMAIN to "EmuLaTor".
  evdns_base_set_option(dns, "randomize-case:", "0");
  // Container resolv.conf files may list a nameserver that never answers. By default evdns
  // marks a nameserver down after 3 timeouts and then only probes it every 10 s or more, so a
  // name that is not resolvable yet at start-up stays unresolvable for a long while. Never mark
  // it down: the pool retries the connection with its own backoff, and a failed lookup moves
  // the next ones to the next nameserver (OnLookupFailed).
  evdns_base_set_option(dns, "max-timeouts:", "255");
  evdns_base_set_option(dns, "initial-probe-timeout:", "1");
  // A lost query (a container resolver reloading drops some) costs 2 s before the retry, not
  // evdns's default 5 s: the first push of a fresh replica waits for it.
  evdns_base_set_option(dns, "timeout:", "2");
  evdns_base_set_option(dns, "attempts:", "3");
  return resolver;
}

Resolver::Resolver(evdns_base* dns, std::string host, std::string resolv_conf, std::string log_name)
    : dns_(dns),
      host_(std::move(host)),
      resolv_conf_(std::move(resolv_conf)),
      log_name_(std::move(log_name)) {}

Resolver::~Resolver() { evdns_base_free(dns_, 0); }

void Resolver::ReadNameservers() {
  // Missing resolv.conf falls back to defaults; /etc/hosts is honoured.
  evdns_base_resolv_conf_parse(dns_, DNS_OPTIONS_ALL, resolv_conf_.c_str());
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

void Resolver::UseNameserver(size_t index) {
  nameserver_ = index;
  const sockaddr_storage& address = nameservers_[index];
  evdns_base_clear_nameservers_and_suspend(dns_);
  evdns_base_nameserver_sockaddr_add(
      dns_, reinterpret_cast<const sockaddr*>(&address),
      address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in), 0);
  evdns_base_resume(dns_);
}

void Resolver::OnLookupFailed() {
  if (nameservers_.size() < 2) return;
  UseNameserver((nameserver_ + 1) % nameservers_.size());
  auto address = SockaddrToHostPort(&nameservers_[nameserver_]);
  log::Get("pusher.http2")
      ->info("pool={} the next lookups of {} ask nameserver {}:{} ({} of {} in {})", log_name_,
             host_, address ? address->first : "?", address ? address->second : 0, nameserver_ + 1,
             nameservers_.size(), resolv_conf_);
}

}  // namespace pushgate::http2
