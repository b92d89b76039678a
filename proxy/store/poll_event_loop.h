// A simple poll(2)-based EventLoop for tests and command-line tools. Not thread-safe: create it
// and run it on one thread. The loop runs only inside RunOnce / RunUntil.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "absl/time/time.h"
#include "proxy/store/event_loop.h"

namespace pushgate::proxy {

class PollEventLoop final : public EventLoop {
 public:
  PollEventLoop() = default;
  ~PollEventLoop() override;
  PollEventLoop(const PollEventLoop&) = delete;
  PollEventLoop& operator=(const PollEventLoop&) = delete;

  std::unique_ptr<FdWatch> WatchFd(int fd, FdCallback callback) override;
  std::unique_ptr<Timer> CreateTimer(std::function<void()> callback) override;
  absl::Time Now() const override { return MonotonicNow(); }

  // Waits at most `max_wait` for a ready fd or a due timer, then runs the due callbacks.
  // Returns how many callbacks ran.
  int RunOnce(absl::Duration max_wait);
  // Runs the loop until `done()` is true (checked before each iteration) or `timeout` passed.
  // Returns done().
  bool RunUntil(const std::function<bool()>& done, absl::Duration timeout);
  // Runs the loop for `duration` (timers and fds keep being served).
  void RunFor(absl::Duration duration);

  size_t watch_count() const { return watches_.size(); }
  // Watches with write readiness enabled. A hiredis connection enables it while it has unsent
  // output, so 0 means every command issued so far has been written to its socket.
  size_t write_watch_count() const;
  size_t active_timer_count() const { return timers_.size(); }

 private:
  class PollWatch;
  class PollTimer;
  struct WatchEntry {
    int fd = -1;
    bool read = false;
    bool write = false;
    FdCallback callback;
  };
  struct TimerEntry {
    std::function<void()> callback;
  };

  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<WatchEntry>> watches_;
  // Armed timers by (deadline, id); `timer_deadlines_` maps id -> deadline for cancellation.
  std::map<std::pair<absl::Time, uint64_t>, std::shared_ptr<TimerEntry>> timers_;
  std::map<uint64_t, absl::Time> timer_deadlines_;
};

}  // namespace pushgate::proxy
