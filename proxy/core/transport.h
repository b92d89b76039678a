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
// else as is.
std::string UriHost(absl::string_view host);

// The URI that reaches `address` itself: "sip:192.0.2.1:5060;transport=udp",
// "sips:[2001:db8::1]:5061;transport=tls" (a next hop, not a request URI).
std::string AddressUri(const TransportInfo& address);

// "udp:192.0.2.1:5060", "tls:[2001:db8::1]:5061": for logs and test messages.
std::string DebugString(const TransportInfo& info);

// The SIP URI that names `address` over its transport: "sip:192.0.2.1:5060;transport=udp",
// "sip:[2001:db8::1]:5060;transport=tcp", "sips:192.0.2.1:5061" (TLS). Port 0 is written "*"
// (any port, as sofia's listener URLs take it).
std::string TransportUri(const TransportInfo& address);

}  // namespace pushgate::proxy
