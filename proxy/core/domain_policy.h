// Which registration domains the gateway serves.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace pushgate::proxy {

class DomainPolicy final {
 public:
  // Entries: "*" (every domain), "example.org" (exact), "*.example.org" (any subdomain, not
  // example.org itself). Case-insensitive; a trailing dot is ignored. Empty list: nothing.
  explicit DomainPolicy(const std::vector<std::string>& domains);
  static DomainPolicy AllowAll() { return DomainPolicy({"*"}); }

  bool Allowed(absl::string_view host) const;
  bool allow_all() const { return allow_all_; }

 private:
  bool allow_all_ = false;
  std::vector<std::string> exact_;     // lower case, no trailing dot
  std::vector<std::string> suffixes_;  // ".example.org"
};

}  // namespace pushgate::proxy
