// Logging facade over spdlog: one logger per component, text or JSON lines, level per component.
// Device tokens and credentials never reach a log whole: callers pass them through RedactToken /
// RedactSecret.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

// Debian's Abseil keeps its own absl::string_view (not an alias of std::string_view): teach fmt
// to print it so log calls can pass one directly.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace pushgate::log {

struct LogConfig {
  std::string format = "text";  // "text" or "json" (one JSON object per line)
  std::string level = "info";   // trace, debug, info, warn, error, critical, off
  // Per-component overrides: "proxy.sofia=debug,pusher.http2=trace".
  std::string components;
};

// Validates and applies the configuration to every logger, present and future.
absl::Status Init(const LogConfig& config);

// The logger of one component ("proxy", "pusher.apns", ...), created on first use.
std::shared_ptr<spdlog::logger> Get(absl::string_view component);

// Enough of a device token to correlate log lines, never enough to push to it:
// "3f9a1c…(64)". Tokens of 8 characters or fewer are replaced entirely.
std::string RedactToken(absl::string_view token);

// Nothing of a credential but its length: "<redacted:32>".
std::string RedactSecret(absl::string_view secret);

// A SIP URI (or a Contact / header value holding URIs) with every push token in it redacted
// (RedactToken): the values of the RFC 8599 pn-prid parameter and of the legacy pn-tok one, in
// any letter case, wherever they appear. The rest is unchanged.
std::string RedactUri(absl::string_view uri);

// Escapes a string for inclusion inside a JSON string literal (no surrounding quotes).
std::string JsonEscape(absl::string_view in);

}  // namespace pushgate::log
