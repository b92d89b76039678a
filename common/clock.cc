#include "common/clock.h"

namespace pushgate {

RealClock& RealClock::Get() {
  static RealClock clock;
  return clock;
}

}  // namespace pushgate
