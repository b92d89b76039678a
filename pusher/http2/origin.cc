#include "pusher/http2/origin.h"

#include <arpa/inet.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pushgate::http2 {

absl::StatusOr<Origin> ParseBaseUrl(absl::string_view url) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("invalid base_url '", url, "': ", why));
  };
  constexpr absl::string_view kScheme = "https://";
  if (!absl::StartsWithIgnoreCase(url, kScheme)) {
    return bad("must start with https:// (HTTP/2 over TLS only)");
  }
  absl::string_view rest = url.substr(kScheme.size());
  if (absl::EndsWith(rest, "/")) rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != absl::string_view::npos) {
    return bad("must be https://host[:port] without path, query or user info");
  }
  Origin origin;
  absl::string_view port_text;
  if (absl::StartsWith(rest, "[")) {
    size_t close = rest.find(']');
    if (close == absl::string_view::npos) return bad("unterminated IPv6 address");
    origin.host = std::string(rest.substr(1, close - 1));
    absl::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected text after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
    in6_addr a6;
    if (inet_pton(AF_INET6, origin.host.c_str(), &a6) != 1) return bad("invalid IPv6 address");
    origin.host_is_ip = true;
  } else {
    size_t colon = rest.find(':');
    origin.host = std::string(rest.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
    in_addr a4;
    origin.host_is_ip = inet_pton(AF_INET, origin.host.c_str(), &a4) == 1;
  }
  if (origin.host.empty()) return bad("empty host");
  if (!port_text.empty()) {
    int port = 0;
    if (!absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535) {
      return bad("port must be 1..65535");
    }
    origin.port = port;
  }
  origin.host = absl::AsciiStrToLower(origin.host);
  std::string host_part = origin.host.find(':') != std::string::npos
                              ? absl::StrCat("[", origin.host, "]")
                              : origin.host;
  origin.authority = origin.port == 443 ? host_part : absl::StrCat(host_part, ":", origin.port);
  return origin;
}

}  // namespace pushgate::http2
