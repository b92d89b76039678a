#include "pusher/core/retry.h"

#include <algorithm>
#include <cmath>

namespace pushgate::pusher {

std::optional<absl::Duration> RetryPolicy::NextDelay(int attempts_made,
                                                     std::optional<absl::Duration> retry_after,
                                                     absl::Time now, absl::Time deadline,
                                                     double random01) const {
  if (attempts_made >= max_attempts) return std::nullopt;
  int exponent = std::max(attempts_made, 1) - 1;
  double base_s = absl::ToDoubleSeconds(initial) * std::pow(multiplier, exponent);
  base_s = std::min(base_s, absl::ToDoubleSeconds(max));
  double r = std::clamp(random01, 0.0, 1.0);
  double jittered_s = base_s * (1.0 + jitter * (2.0 * r - 1.0));
  absl::Duration delay = absl::Seconds(std::max(jittered_s, 0.0));
  if (retry_after && *retry_after > delay) delay = *retry_after;
  if (now + delay + min_attempt_time > deadline) return std::nullopt;
  return delay;
}

}  // namespace pushgate::pusher
