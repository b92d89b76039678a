#include "pusher/http2/backoff.h"

#include <algorithm>

namespace pushgate::http2 {

absl::Duration ReconnectDelay(absl::Duration initial, absl::Duration max, int consecutive_failures,
                              double jitter01) {
  absl::Duration d = initial;
  for (int i = 1; i < consecutive_failures && d < max; ++i) d *= 2;
  d = std::min(d, max);
  jitter01 = std::clamp(jitter01, 0.0, 1.0);
  return d * (0.8 + 0.2 * jitter01);
}

}  // namespace pushgate::http2
