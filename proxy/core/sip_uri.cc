#include "proxy/core/sip_uri.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace pushgate::proxy {
namespace {

absl::Status UriError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("URI: ", what));
}

// Characters never valid anywhere in a SIP URI as we accept it.
bool IsForbidden(char c) {
  return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' ||
         c == '\\' || c == '{' || c == '}' || c == '|' || c == '^' || c == '`';
}

bool IsHostChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_'; }

bool IsIpv6Char(char c) { return absl::ascii_isxdigit(c) || c == ':' || c == '.'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Case-insensitive parameter name lists that RFC 3261 19.1.4 compares even when only one side
// has them.
bool IsSpecialParam(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "transport") || absl::EqualsIgnoreCase(name, "user") ||
         absl::EqualsIgnoreCase(name, "ttl") || absl::EqualsIgnoreCase(name, "method") ||
         absl::EqualsIgnoreCase(name, "maddr");
}

}  // namespace

std::string PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

bool IsIpv6Literal(absl::string_view host) { return host.find(':') != absl::string_view::npos; }

uint16_t PortOrDefault(const Uri& uri) {
  return uri.port.value_or(uri.scheme == "sips" ? 5061 : 5060);
}

namespace {

// "[2001:db8::1]:5060" (the part after the '[' handled here) -> host, port text.
absl::Status ParseIpv6HostPort(absl::string_view hostport, Uri& uri, absl::string_view& port_text,
                               bool& has_port) {
  const size_t close = hostport.find(']');
  if (close == absl::string_view::npos) return UriError("unterminated IPv6 reference");
  absl::string_view host = hostport.substr(1, close - 1);
  if (host.empty() || !IsIpv6Literal(host)) return UriError("invalid IPv6 reference");
  // An RFC 6874 zone id ("fe80::1%25eth0") may follow the address.
  const size_t zone = host.find('%');
  for (char c : host.substr(0, zone)) {
    if (!IsIpv6Char(c)) return UriError(absl::StrCat("invalid IPv6 address \"", host, "\""));
  }
  if (zone != absl::string_view::npos) {
    for (char c : host.substr(zone + 1)) {
      if (!IsHostChar(c) && c != '%') {
        return UriError(absl::StrCat("invalid IPv6 zone in \"", host, "\""));
      }
    }
  }
  uri.host = std::string(host);
  absl::string_view after = hostport.substr(close + 1);
  if (!after.empty()) {
    if (after.front() != ':') return UriError("garbage after IPv6 reference");
    port_text = after.substr(1);
    has_port = true;
  }
  return absl::OkStatus();
}

// "host[:port]" or "[v6][:port]" into uri.host and uri.port.
absl::Status ParseHostPort(absl::string_view hostport, Uri& uri) {
  if (hostport.empty()) return UriError("empty host");
  absl::string_view port_text;
  bool has_port = false;
  if (hostport.front() == '[') {
    RETURN_IF_ERROR(ParseIpv6HostPort(hostport, uri, port_text, has_port));
  } else {
    const size_t pc = hostport.find(':');
    absl::string_view host = hostport.substr(0, pc);
    if (pc != absl::string_view::npos) {
      port_text = hostport.substr(pc + 1);
      has_port = true;
    }
    if (host.empty()) return UriError("empty host");
    for (char c : host) {
      if (!IsHostChar(c)) return UriError(absl::StrCat("invalid host \"", host, "\""));
    }
    uri.host = std::string(host);
  }
  if (!has_port) return absl::OkStatus();
  uint32_t port = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
    return UriError(absl::StrCat("invalid port \"", port_text, "\""));
  }
  uri.port = static_cast<uint16_t>(port);
  return absl::OkStatus();
}

// ";name[=value]..." (without the first ';') into uri.params.
absl::Status ParseParams(absl::string_view params, Uri& uri) {
  while (!params.empty()) {
    const size_t next = params.find(';');
    absl::string_view param = params.substr(0, next);
    params = next == absl::string_view::npos ? absl::string_view() : params.substr(next + 1);
    const size_t eq = param.find('=');
    absl::string_view name = param.substr(0, eq);
    if (name.empty()) return UriError("empty parameter name");
    if (eq == absl::string_view::npos) {
      uri.params.emplace_back(std::string(name), std::string());
    } else {
      absl::string_view value = param.substr(eq + 1);
      if (value.empty()) return UriError(absl::StrCat("empty value for parameter \"", name, "\""));
      uri.params.emplace_back(std::string(name), std::string(value));
    }
  }
  return absl::OkStatus();
}

// The scheme ("sip", "sips"), lower-cased; `rest` is left after its ':'.
absl::StatusOr<std::string> ParseScheme(absl::string_view text, absl::string_view& rest) {
  for (char c : text) {
    if (IsForbidden(c)) {
      if (static_cast<unsigned char>(c) <= 0x20) return UriError("contains whitespace or control");
      return UriError(absl::StrCat("invalid character '", absl::string_view(&c, 1), "'"));
    }
  }
  const size_t colon = text.find(':');
  if (colon == absl::string_view::npos) return UriError("missing scheme");
  std::string scheme = absl::AsciiStrToLower(text.substr(0, colon));
  if (scheme != "sip" && scheme != "sips") {
    return UriError(absl::StrCat("unsupported scheme \"", text.substr(0, colon), "\""));
  }
  rest = text.substr(colon + 1);
  return scheme;
}

}  // namespace

absl::StatusOr<Uri> ParseUri(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return UriError("empty");
  Uri uri;
  absl::string_view rest;
  ASSIGN_OR_RETURN(uri.scheme, ParseScheme(text, rest));

  // userinfo: up to the first '@', unless that '@' is inside the headers part.
  const size_t at = rest.find('@');
  if (at != absl::string_view::npos && rest.substr(0, at).find('?') == absl::string_view::npos) {
    absl::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t pw = userinfo.find(':');
    if (pw != absl::string_view::npos) {
      uri.password = std::string(userinfo.substr(pw + 1));
      userinfo = userinfo.substr(0, pw);
    }
    if (userinfo.empty()) return UriError("empty user part");
    uri.user = std::string(userinfo);
  }

  // headers
  const size_t q = rest.find('?');
  if (q != absl::string_view::npos) {
    uri.headers = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  // hostport ; params
  const size_t semi = rest.find(';');
  RETURN_IF_ERROR(ParseHostPort(rest.substr(0, semi), uri));
  if (semi != absl::string_view::npos) RETURN_IF_ERROR(ParseParams(rest.substr(semi + 1), uri));
  return uri;
}

std::string FormatUri(const Uri& uri) {
  std::string out = absl::StrCat(uri.scheme.empty() ? "sip" : uri.scheme, ":");
  if (!uri.user.empty()) {
    absl::StrAppend(&out, uri.user);
    if (!uri.password.empty()) absl::StrAppend(&out, ":", uri.password);
    out.push_back('@');
  }
  AppendUriHost(&out, uri.host);
  if (uri.port) absl::StrAppend(&out, ":", *uri.port);
  for (const auto& [name, value] : uri.params) {
    absl::StrAppend(&out, ";", name);
    if (!value.empty()) absl::StrAppend(&out, "=", value);
  }
  if (!uri.headers.empty()) absl::StrAppend(&out, "?", uri.headers);
  return out;
}

std::optional<std::string> Param(const Uri& uri, absl::string_view name) {
  for (const auto& [n, v] : uri.params) {
    if (absl::EqualsIgnoreCase(n, name)) return v;
  }
  return std::nullopt;
}

bool HasParam(const Uri& uri, absl::string_view name) { return Param(uri, name).has_value(); }

void SetParam(Uri& uri, absl::string_view name, absl::string_view value) {
  for (auto& [n, v] : uri.params) {
    if (absl::EqualsIgnoreCase(n, name)) {
      v = std::string(value);
      return;
    }
  }
  uri.params.emplace_back(std::string(name), std::string(value));
}

int RemoveParam(Uri& uri, absl::string_view name) {
  const size_t before = uri.params.size();
  std::erase_if(uri.params, [&](const auto& p) { return absl::EqualsIgnoreCase(p.first, name); });
  return static_cast<int>(before - uri.params.size());
}

absl::StatusOr<Transport> UriTransport(const Uri& uri) {
  const bool sips = uri.scheme == "sips";
  if (auto t = Param(uri, "transport")) {
    ASSIGN_OR_RETURN(Transport transport, ParseTransport(*t));
    // RFC 3261 19.1.2: "sips:...;transport=tcp" is TLS over TCP.
    if (sips && transport == Transport::kTcp) return Transport::kTls;
    if (sips && transport == Transport::kUdp) {
      return absl::InvalidArgumentError("URI: sips with transport=udp");
    }
    return transport;
  }
  return sips ? Transport::kTls : Transport::kUdp;
}

std::string AorKey(const Uri& uri) {
  std::string key = uri.user.empty() ? "sip:" : absl::StrCat("sip:", uri.user, "@");
  const size_t host_at = key.size();
  AppendUriHost(&key, uri.host);
  for (size_t i = host_at; i < key.size(); ++i) key[i] = absl::ascii_tolower(key[i]);
  return key;
}

bool UriEquivalent(const Uri& a, const Uri& b) {
  if (!absl::EqualsIgnoreCase(a.scheme, b.scheme) || a.user != b.user || a.password != b.password ||
      !absl::EqualsIgnoreCase(a.host, b.host) || a.port != b.port) {
    return false;
  }
  auto check = [](const Uri& x, const Uri& y) {
    for (const auto& [name, value] : x.params) {
      std::optional<std::string> other = Param(y, name);
      if (!other) {
        if (IsSpecialParam(name)) return false;
        continue;
      }
      if (!absl::EqualsIgnoreCase(*other, value)) return false;
    }
    return true;
  };
  return check(a, b) && check(b, a);
}

}  // namespace pushgate::proxy
