// Reconnection delay of the HTTP/2 pool (pure).
#pragma once

#include "absl/time/time.h"

namespace pushgate::http2 {

// Delay before the next connection attempt after `consecutive_failures` (>= 1) failed ones:
// initial * 2^(failures-1), capped at max, then scaled by a jitter factor in [0.8, 1.0]
// (`jitter01` in [0, 1] picks it) so that many pools do not reconnect in lockstep.
absl::Duration ReconnectDelay(absl::Duration initial, absl::Duration max, int consecutive_failures,
                              double jitter01);

}  // namespace pushgate::http2
