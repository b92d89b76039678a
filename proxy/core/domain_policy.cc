#include "proxy/core/domain_policy.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace pushgate::proxy {
namespace {

std::string Normalize(absl::string_view host) {
  host = absl::StripAsciiWhitespace(host);
  absl::ConsumeSuffix(&host, ".");
  return absl::AsciiStrToLower(host);
}

}  // namespace

DomainPolicy::DomainPolicy(const std::vector<std::string>& domains) {
  for (const std::string& d : domains) {
    std::string n = Normalize(d);
    if (n == "*") {
      allow_all_ = true;
    } else if (absl::StartsWith(n, "*.") && n.size() > 2) {
      suffixes_.push_back(n.substr(1));
    } else if (!n.empty()) {
      exact_.push_back(std::move(n));
    }
  }
}

bool DomainPolicy::Allowed(absl::string_view host) const {
  if (allow_all_) return true;
  const std::string h = Normalize(host);
  if (h.empty()) return false;
  for (const std::string& e : exact_) {
    if (h == e) return true;
  }
  for (const std::string& s : suffixes_) {
    if (h.size() > s.size() && absl::EndsWith(h, s)) return true;
  }
  return false;
}

}  // namespace pushgate::proxy
