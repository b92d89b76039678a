#include "pusher/provider/scheduler.h"

#include "absl/time/clock.h"

namespace pushgate::pusher {

ThreadScheduler::ThreadScheduler() : thread_([this] { Loop(); }) {}

ThreadScheduler::~ThreadScheduler() { Stop(); }

void ThreadScheduler::RunAt(absl::Time when, std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      items_.push(Item{when, next_seq_++, std::move(fn)});
      cv_.notify_one();
      return;
    }
  }
  fn();  // after Stop(): run now rather than drop
}

void ThreadScheduler::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void ThreadScheduler::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopping_) {
      // Run what is left at once: each callback answers its caller (typically with the last
      // verdict) instead of leaving it waiting.
      while (!items_.empty()) {
        auto fn = std::move(const_cast<Item&>(items_.top()).fn);
        items_.pop();
        lock.unlock();
        fn();
        lock.lock();
      }
      return;
    }
    if (items_.empty()) {
      cv_.wait(lock);
      continue;
    }
    absl::Time now = absl::Now();
    if (items_.top().when > now) {
      cv_.wait_for(lock, absl::ToChronoNanoseconds(items_.top().when - now));
      continue;
    }
    auto fn = std::move(const_cast<Item&>(items_.top()).fn);
    items_.pop();
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace pushgate::pusher
