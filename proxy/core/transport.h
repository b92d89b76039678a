// SIP transports and transport addresses as plain values (no tport_t).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pushgate::proxy {

enum class Transport : uint8_t { kUdp = 0, kTcp = 1, kTls = 2 };

// "udp", "tcp", "tls" (lower case, as used in the `transport` URI parameter).
absl::string_view TransportName(Transport transport);

// Parses a transport name, case-insensitively ("UDP", "tcp", "TLS"). Anything else (including
// "sctp", "ws") -> INVALID_ARGUMENT.
absl::StatusOr<Transport> ParseTransport(absl::string_view name);

// Where a SIP message came from or goes to. `host` is an IP literal or a domain name; IPv6
// literals are stored WITHOUT brackets ("2001:db8::1").
struct TransportInfo {
  Transport transport = Transport::kUdp;
  std::string host;
  uint16_t port = 0;

  bool operator==(const TransportInfo&) const = default;
};

// A host as written in a URI or a Via: IPv6 literals in brackets ("[2001:db8::1]"), anything
// else as is. AppendUriHost appends it to `out` (no temporary string).
std::string UriHost(absl::string_view host);
void AppendUriHost(std::string* out, absl::string_view host);
// The reverse: a host as a TransportInfo keeps it, brackets removed ("[2001:db8::1]" ->
// "2001:db8::1"); anything else as is.
absl::string_view BareHost(absl::string_view host);

// The forms of "the URI of an address" (AddressUri). Every form brackets IPv6 literals, writes
// "sips:" for TLS and "sip:" otherwise, and names the transport unless said:
enum class UriForm : uint8_t {
  // A next hop nta sends to over exactly that transport: ";transport=" always written.
  //   "sip:192.0.2.1:5060;transport=udp", "sips:[2001:db8::1]:5061;transport=tls"
  kNextHop,
  // Our Record-Route (RFC 3261: UDP is the default of sip, ";transport=udp" left out).
  //   "sip:192.0.2.1:5060", "sip:192.0.2.1:5070;transport=tcp", "sips:h:5061;transport=tls"
  kRecordRoute,
  // A sofia listener URL: port 0 written "*" (any port), TLS by its scheme alone.
  //   "sip:[::]:*;transport=udp", "sips:gw.example.org:5061"
  kListener,
};

// The URI that names `address` itself, in the form asked (the one place that formats it).
std::string AddressUri(const TransportInfo& address, UriForm form = UriForm::kNextHop);

// "udp:192.0.2.1:5060", "tls:[2001:db8::1]:5061": for logs and test messages.
std::string DebugString(const TransportInfo& info);

}  // namespace pushgate::proxy
