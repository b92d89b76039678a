#include "proxy/sofia/backend_trust.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pushgate::proxy::sofia {

BackendTrust::BackendTrust(std::optional<Uri> backend, std::vector<std::string> trusted,
                           DomainPolicy domains)
    : backend_(std::move(backend)), trusted_(std::move(trusted)), domains_(std::move(domains)) {
  if (!backend_) return;
  // Requests the backend sends us come from its address: trust it when it is an IP literal
  // (with its port for UDP, where the backend sends from its listening port).
  bool ip_literal = IsIpv6Literal(backend_->host) ||
                    std::all_of(backend_->host.begin(), backend_->host.end(),
                                [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
  if (!ip_literal) return;
  auto t = UriTransport(*backend_);
  if (t.ok() && *t == Transport::kUdp) {
    trusted_.push_back(absl::StrCat(UriHost(backend_->host), ":", backend_->port.value_or(5060)));
  } else {
    trusted_.push_back(backend_->host);
  }
}

bool BackendTrust::From(const std::optional<TransportInfo>& source) const {
  if (!source) return false;
  std::string host = UriHost(source->host);
  std::string with_port = absl::StrCat(host, ":", source->port);
  return std::any_of(trusted_.begin(), trusted_.end(), [&](const std::string& entry) {
    return entry == source->host || entry == host || entry == with_port;
  });
}

bool BackendTrust::TowardBackend(const Uri& next) const {
  const uint16_t port = next.port.value_or(next.scheme == "sips" ? 5061 : 5060);
  if (backend_ && absl::EqualsIgnoreCase(next.host, backend_->host) &&
      port == backend_->port.value_or(backend_->scheme == "sips" ? 5061 : 5060)) {
    return true;
  }
  // The backend's own Record-Route may name it by address: the trusted backends list.
  TransportInfo hop;
  hop.host = next.host;
  hop.port = port;
  if (From(hop)) return true;
  return !backend_ && !domains_.allow_all() && domains_.Allowed(next.host);
}

}  // namespace pushgate::proxy::sofia
