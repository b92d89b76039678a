// The origin an HTTP/2 pool talks to, parsed from PoolOptions::base_url (pure).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pushgate::http2 {

struct Origin {
  std::string host;  // without brackets for IPv6
  int port = 443;
  std::string authority;  // ":authority" value: host[:port], IPv6 bracketed
  bool host_is_ip = false;
};

// "https://host[:port]" (IPv6 in brackets, a trailing "/" allowed); errors name the URL and why.
absl::StatusOr<Origin> ParseBaseUrl(absl::string_view url);

}  // namespace pushgate::http2
