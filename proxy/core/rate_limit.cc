#include "proxy/core/rate_limit.h"

namespace pushgate::proxy {

RateVerdict RateLimiter::Check(absl::string_view source, absl::Time now) {
  if (policy_.requests <= 0) return RateVerdict::kAllowed;
  auto it = entries_.find(source);
  if (it == entries_.end()) {
    if (policy_.max_sources == 0) return RateVerdict::kAllowed;
    if (entries_.size() >= policy_.max_sources) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.emplace_front(source);
    it = entries_.emplace(lru_.front(), Entry{now, 0, absl::InfinitePast(), lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Entry& e = it->second;
  if (now < e.blocked_until) return RateVerdict::kBlocked;
  if (now - e.window_start >= policy_.window) {
    e.window_start = now;
    e.count = 0;
  }
  if (++e.count > policy_.requests) {
    e.blocked_until = now + policy_.block;
    e.count = 0;
    e.window_start = e.blocked_until;
    return RateVerdict::kBlocked;
  }
  return RateVerdict::kAllowed;
}

absl::Time RateLimiter::BlockedUntil(absl::string_view source) const {
  auto it = entries_.find(source);
  return it == entries_.end() ? absl::InfinitePast() : it->second.blocked_until;
}

}  // namespace pushgate::proxy
