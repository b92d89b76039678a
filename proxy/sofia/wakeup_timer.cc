#include "proxy/sofia/wakeup_timer.h"

#include <algorithm>
#include <vector>

namespace pushgate::proxy::sofia {

WakeupTimer::WakeupTimer(SofiaLoop& loop, const Clock& clock,
                         std::function<void(uint64_t id)> on_due)
    : clock_(clock),
      on_due_(std::move(on_due)),
      timer_(su_timer_create(su_root_task(loop.root()), 0)) {}

WakeupTimer::~WakeupTimer() = default;

void WakeupTimer::Reschedule(uint64_t id, std::optional<absl::Time> from,
                             std::optional<absl::Time> to) {
  if (from) wakeups_.erase({*from, id});
  if (to) wakeups_.insert({*to, id});
  Arm();
}

void WakeupTimer::Arm() {
  if (!timer_) return;
  if (wakeups_.empty()) {
    if (armed_for_) su_timer_reset(timer_.get());
    armed_for_.reset();
    return;
  }
  absl::Time earliest = wakeups_.begin()->first;
  if (armed_for_ && *armed_for_ == earliest) return;
  armed_for_ = earliest;
  absl::Duration delay = std::max(absl::ZeroDuration(), earliest - clock_.Now());
  // Rounded up: sofia's timers have millisecond resolution, and an early wakeup only re-arms.
  auto ms = static_cast<su_duration_t>(
      absl::ToInt64Milliseconds(absl::Ceil(delay, absl::Milliseconds(1))) + 1);
  su_timer_set_interval(timer_.get(), &WakeupTimer::OnTimerCb,
                        reinterpret_cast<su_timer_arg_t*>(this), ms);
}

void WakeupTimer::OnTimerCb(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) noexcept {
  reinterpret_cast<WakeupTimer*>(arg)->OnTimer();
}

void WakeupTimer::OnTimer() {
  armed_for_.reset();
  absl::Time now = clock_.Now();
  std::vector<uint64_t> due;
  while (!wakeups_.empty() && wakeups_.begin()->first <= now) {
    due.push_back(wakeups_.begin()->second);
    wakeups_.erase(wakeups_.begin());
  }
  for (uint64_t id : due) on_due_(id);
  Arm();
}

}  // namespace pushgate::proxy::sofia
