// SIP/SIPS URIs (RFC 3261 section 19.1) as a plain value, with a parser and a formatter.
//
// Parts are stored as they appear on the wire: percent-escapes in the user part, the password
// and the parameters are NOT decoded, so FormatUri(ParseUri(x)) reproduces x (modulo the scheme
// case and IPv6 brackets). Host names keep their case; comparisons below ignore it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy {

using ParamList = std::vector<std::pair<std::string, std::string>>;

struct Uri {
  std::string scheme = "sip";  // "sip" or "sips", always lower case after parsing
  std::string user;            // may be empty (e.g. "sip:example.org")
  std::string password;        // rarely used; empty when absent
  std::string host;            // IPv6 literal WITHOUT brackets
  std::optional<uint16_t> port;
  ParamList params;     // in order; a flag parameter ("lr") has value ""
  std::string headers;  // raw text after '?', without the '?'; empty when absent

  bool operator==(const Uri&) const = default;
};

// Parses "sip:user:pw@host:port;p=v;flag?h=v". Only the sip and sips schemes are accepted.
// Malformed input -> INVALID_ARGUMENT whose message says what is wrong, e.g.
// "URI: unsupported scheme \"tel\"", "URI: empty host", "URI: invalid port \"70000\"".
// Leading/trailing whitespace is ignored.
absl::StatusOr<Uri> ParseUri(absl::string_view text);

// The inverse of ParseUri. IPv6 hosts are written in brackets.
std::string FormatUri(const Uri& uri);

// Decodes %XX escapes; a malformed escape is kept literally.
std::string PercentDecode(absl::string_view text);

// True if `host` is an IPv6 literal (contains ':'), without brackets.
bool IsIpv6Literal(absl::string_view host);

// The URI's port, else the default port of its scheme: 5061 for sips, 5060 for sip.
uint16_t PortOrDefault(const Uri& uri);

// Value of the first parameter whose name matches case-insensitively: nullopt when absent, ""
// for a flag parameter.
std::optional<std::string> Param(const Uri& uri, absl::string_view name);
bool HasParam(const Uri& uri, absl::string_view name);
// Replaces the first parameter with that name (case-insensitive) or appends it.
void SetParam(Uri& uri, absl::string_view name, absl::string_view value);
// Removes every parameter with that name (case-insensitive). Returns how many were removed.
int RemoveParam(Uri& uri, absl::string_view name);

// Transport to reach this URI: the `transport` parameter if present and known, else TLS for
// sips, else UDP; "sips:...;transport=tcp" is TLS. An unknown transport parameter ("ws",
// "sctp") or sips with transport=udp -> INVALID_ARGUMENT.
absl::StatusOr<Transport> UriTransport(const Uri& uri);

// Address-of-record key of a URI: "sip:user@host" with the host lower-cased, no port, no
// parameters, no headers; the sips scheme is folded into "sip" (one AOR for both). This is the
// key bindings are stored under. Example: AorKey("sips:Alice@Example.ORG:5061;transport=tls")
// == "sip:Alice@example.org".
std::string AorKey(const Uri& uri);

// Simplified RFC 3261 19.1.4 comparison: scheme, user and password case-sensitive, host
// case-insensitive, same port (absent != 5060), and the transport/user/ttl/method/maddr
// parameters equal when present in either; other parameters equal when present in both;
// headers ignored.
bool UriEquivalent(const Uri& a, const Uri& b);

}  // namespace pushgate::proxy
