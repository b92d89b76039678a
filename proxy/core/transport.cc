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

void AppendUriHost(std::string* out, absl::string_view host) {
  if (host.find(':') == absl::string_view::npos) {
    absl::StrAppend(out, host);
  } else {
    absl::StrAppend(out, "[", host, "]");
  }
}

absl::string_view BareHost(absl::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

std::string UriHost(absl::string_view host) {
  std::string out;
  AppendUriHost(&out, host);
  return out;
}

std::string AddressUri(const TransportInfo& address, UriForm form) {
  const bool tls = address.transport == Transport::kTls;
  std::string out = tls ? "sips:" : "sip:";
  AppendUriHost(&out, address.host);
  if (form == UriForm::kListener && address.port == 0) {
    out.append(":*");
  } else {
    absl::StrAppend(&out, ":", address.port);
  }
  const bool implied = (form == UriForm::kRecordRoute && address.transport == Transport::kUdp) ||
                       (form == UriForm::kListener && tls);
  if (!implied) absl::StrAppend(&out, ";transport=", TransportName(address.transport));
  return out;
}

std::string DebugString(const TransportInfo& info) {
  std::string out = absl::StrCat(TransportName(info.transport), ":");
  AppendUriHost(&out, info.host);
  absl::StrAppend(&out, ":", info.port);
  return out;
}

}  // namespace pushgate::proxy
