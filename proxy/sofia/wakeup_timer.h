// Wakeups of many objects (the calls of a CallRouter, keyed by id) on one su timer armed at the
// earliest: per-object timers would pile up in the loop (one per call for its 90 s deadline) and
// wake it for nothing. The owner keeps each id's wakeup time and tells Reschedule() when it
// changes; at the time, `on_due(id)` runs for every due id (removed before the calls, so it may
// reschedule). Loop thread only; the timer is destroyed with the object.
#pragma once

#include <sofia-sip/su_wait.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/time/time.h"
#include "common/clock.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/sofia_util.h"

namespace pushgate::proxy::sofia {

class WakeupTimer final {
 public:
  // `on_due` must not destroy the WakeupTimer.
  WakeupTimer(SofiaLoop& loop, const Clock& clock, std::function<void(uint64_t id)> on_due);
  ~WakeupTimer();
  WakeupTimer(const WakeupTimer&) = delete;
  WakeupTimer& operator=(const WakeupTimer&) = delete;

  // False when the su timer could not be created (wakeups never come).
  bool ok() const { return timer_ != nullptr; }

  // Moves `id`'s wakeup from `from` to `to` (nullopt: none).
  void Reschedule(uint64_t id, std::optional<absl::Time> from, std::optional<absl::Time> to);

 private:
  void Arm();
  static void OnTimerCb(su_root_magic_t* magic, su_timer_t* timer, su_timer_arg_t* arg) noexcept;
  void OnTimer();

  const Clock& clock_;
  std::function<void(uint64_t)> on_due_;
  TimerPtr timer_;
  std::set<std::pair<absl::Time, uint64_t>> wakeups_;  // (when, id)
  std::optional<absl::Time> armed_for_;
};

}  // namespace pushgate::proxy::sofia
