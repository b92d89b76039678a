#include "proxy/core/transport.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pushgate::proxy {

absl::string_view TransportName(Transport transport) {
  switch (transport) {
    case Transport::kUdp:
      return "udp";
    case Transport::kTcp:
      return "tcp";
    case Transport::kTls:
      return "tls";
  }
  return "udp";
}

absl::StatusOr<Transport> ParseTransport(absl::string_view name) {
  if (absl::EqualsIgnoreCase(name, "udp")) return Transport::kUdp;
  if (absl::EqualsIgnoreCase(name, "tcp")) return Transport::kTcp;
  if (absl::EqualsIgnoreCase(name, "tls")) return Transport::kTls;
  return absl::InvalidArgumentError(absl::StrCat("unsupported transport \"", name, "\""));
}

std::string UriHost(absl::string_view host) {
  if (host.find(':') == absl::string_view::npos) return std::string(host);
  return absl::StrCat("[", host, "]");
}

std::string AddressUri(const TransportInfo& address) {
  return absl::StrCat(
      address.transport == Transport::kTls ? "sips:" : "sip:", UriHost(address.host), ":",
      address.port, ";transport=", TransportName(address.transport));
}

std::string DebugString(const TransportInfo& info) {
  return absl::StrCat(TransportName(info.transport), ":", UriHost(info.host), ":", info.port);
}

std::string TransportUri(const TransportInfo& address) {
  const std::string port = address.port == 0 ? "*" : absl::StrCat(address.port);
  if (address.transport == Transport::kTls) {
    return absl::StrCat("sips:", UriHost(address.host), ":", port);
  }
  return absl::StrCat("sip:", UriHost(address.host), ":", port,
                      ";transport=", TransportName(address.transport));
}

}  // namespace pushgate::proxy
