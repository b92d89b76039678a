// Retry policy: exponential backoff with jitter, honouring Retry-After, bounded by the request's
// deadline and an attempt budget. Pure: time and randomness are parameters.
#pragma once

#include <optional>

#include "absl/time/time.h"

namespace pushgate::pusher {

struct RetryPolicy {
  absl::Duration initial = absl::Milliseconds(100);  // delay after the first attempt
  double multiplier = 2.0;
  absl::Duration max = absl::Seconds(30);  // cap on the backoff (not on Retry-After)
  double jitter = 0.2;                     // delay varies by +-20%
  int max_attempts = 5;                    // attempts in total, the first one included
  // A retry is only worth it if the attempt has at least this long before the deadline.
  absl::Duration min_attempt_time = absl::Milliseconds(10);

  // How long to wait before the next attempt, after `attempts_made` (>= 1) attempts failed
  // retryably: initial * multiplier^(attempts_made-1), capped at `max`, scaled by
  // (1 + jitter * (2*random01 - 1)), and at least `retry_after`. nullopt when the attempt budget
  // is spent or the retry could not start by `deadline - min_attempt_time`.
  // `random01` is uniform in [0, 1) (injected so tests are deterministic).
  std::optional<absl::Duration> NextDelay(int attempts_made,
                                          std::optional<absl::Duration> retry_after, absl::Time now,
                                          absl::Time deadline, double random01) const;
};

}  // namespace pushgate::pusher
