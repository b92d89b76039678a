// Runs callbacks at a given time on one background thread (retry backoff, token refresh).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"

namespace pushgate::pusher {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Runs `fn` on the scheduler's thread once `clock.Now() >= when`.
  virtual void RunAt(absl::Time when, std::function<void()> fn) = 0;
};

// A Scheduler on the real clock with its own thread. Stop() (or the destructor) runs nothing
// more; callbacks still pending are run at once so nobody waits forever.
class ThreadScheduler final : public Scheduler {
 public:
  ThreadScheduler();
  ~ThreadScheduler() override;
  void RunAt(absl::Time when, std::function<void()> fn) override;
  void Stop();

 private:
  struct Item {
    absl::Time when;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Item& o) const { return when != o.when ? when > o.when : seq > o.seq; }
  };
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> items_;
  uint64_t next_seq_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace pushgate::pusher
