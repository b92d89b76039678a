// Injectable time source. Logic takes a Clock&; tests pass a FakeClock (tests/fakes).
#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pushgate {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // The process-wide real clock, for main.cc and adapters.
  static RealClock& Get();
};

}  // namespace pushgate
