#pragma once

#include <atomic>

#include "common/clock.h"

namespace pushgate {

// A clock that moves only when the test says so. Starts at a fixed, recognisable instant.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}
  absl::Time Now() const override { return now_.load(); }
  void Advance(absl::Duration d) { now_.store(now_.load() + d); }
  void Set(absl::Time t) { now_.store(t); }

 private:
  std::atomic<absl::Time> now_;
};

}  // namespace pushgate
