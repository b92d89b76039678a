// A pusher::Scheduler that runs nothing by itself: the test runs what is due on a FakeClock.
// Records when each callback asked to run, so tests can assert backoff delays.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "pusher/provider/scheduler.h"
#include "tests/fakes/fake_clock.h"

namespace pushgate {

class FakeScheduler final : public pusher::Scheduler {
 public:
  explicit FakeScheduler(FakeClock& clock) : clock_(clock) {}

  void RunAt(absl::Time when, std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    requested_.push_back(when - clock_.Now());
    items_.push_back({when, std::move(fn)});
  }

  size_t pending() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  // The delay (from the clock's time then) of every RunAt so far, in order.
  std::vector<absl::Duration> requested_delays() const {
    std::lock_guard lock(mu_);
    return requested_;
  }
  // Moves the clock to the earliest pending callback's time and runs it. Returns how far the
  // clock moved, nullopt when nothing is pending.
  std::optional<absl::Duration> RunNext() {
    Item item;
    absl::Duration moved;
    {
      std::lock_guard lock(mu_);
      if (items_.empty()) return std::nullopt;
      size_t next = 0;
      for (size_t i = 1; i < items_.size(); ++i) {
        if (items_[i].when < items_[next].when) next = i;
      }
      item = std::move(items_[next]);
      items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(next));
      moved = std::max(absl::ZeroDuration(), item.when - clock_.Now());
    }
    clock_.Advance(moved);
    item.fn();
    return moved;
  }

 private:
  struct Item {
    absl::Time when;
    std::function<void()> fn;
  };
  FakeClock& clock_;
  mutable std::mutex mu_;
  std::vector<Item> items_;
  std::vector<absl::Duration> requested_;
};

}  // namespace pushgate
