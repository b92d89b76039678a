// Per-source request rate limiting, after Kamailio's pike module: a source (an IP address) may
// send `requests` requests per `window`; beyond, it is blocked for `block` (every request then
// refused, none counted). Memory is bounded: at most `max_sources` sources are tracked, the least
// recently seen one is forgotten first (a forgotten blocked source starts afresh).
//
// Pure logic: the time is passed in. Not thread-safe (one per loop).
#pragma once

#include <cstddef>
#include <list>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pushgate::proxy {

struct RateLimitPolicy {
  int requests = 30;  // per window; 0 disables the limit
  absl::Duration window = absl::Seconds(2);
  absl::Duration block = absl::Seconds(120);
  size_t max_sources = 100000;
};

enum class RateVerdict {
  kAllowed,
  kBlocked,  // over the budget, or still blocked
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimitPolicy policy) : policy_(policy) {}

  // Counts one request from `source` at `now`.
  RateVerdict Check(absl::string_view source, absl::Time now);
  // Until when `source` is blocked (absl::InfinitePast() when it never was, or was forgotten).
  absl::Time BlockedUntil(absl::string_view source) const;
  size_t tracked() const { return entries_.size(); }

 private:
  struct Entry {
    absl::Time window_start;
    int count = 0;
    absl::Time blocked_until = absl::InfinitePast();
    std::list<std::string>::iterator lru;
  };

  RateLimitPolicy policy_;
  absl::flat_hash_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // most recently seen first
};

}  // namespace pushgate::proxy
