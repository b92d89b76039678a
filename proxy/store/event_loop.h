// The few event-loop services the Redis binding store needs: watch a file descriptor for
// readability/writability and run one-shot timers. Keeps the store independent of sofia: the
// proxy implements it on its su_root (proxy/sofia/su_event_loop.h), tests and tools on poll(2)
// (proxy/store/poll_event_loop.h).
//
// Single-threaded: every method is called on the loop's thread and every callback runs there.
// A watch or timer may be destroyed (or re-armed) from inside its own callback.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "absl/time/time.h"

namespace pushgate::proxy {

class EventLoop {
 public:
  // A registered file descriptor. Destroying it unregisters the fd (it does not close it).
  class FdWatch {
   public:
    virtual ~FdWatch() = default;
    // Which readiness events to report; both false = none (errors and hang-ups may still be
    // reported as `readable`).
    virtual void SetEvents(bool read, bool write) = 0;
  };

  // A one-shot timer. Destroying it cancels it.
  class Timer {
   public:
    virtual ~Timer() = default;
    // (Re)arms the timer to fire once after `delay` (negative = 0).
    virtual void Start(absl::Duration delay) = 0;
    virtual void Stop() = 0;
    virtual bool active() const = 0;
  };

  // `readable` is also true on error/hang-up, so the owner reads and sees the failure.
  using FdCallback = std::function<void(bool readable, bool writable)>;

  virtual ~EventLoop() = default;

  // Starts watching `fd` with no events enabled; enable them with FdWatch::SetEvents.
  virtual std::unique_ptr<FdWatch> WatchFd(int fd, FdCallback callback) = 0;
  // A stopped timer that calls `callback` each time it fires.
  virtual std::unique_ptr<Timer> CreateTimer(std::function<void()> callback) = 0;
  // Monotonic time (arbitrary epoch) for deadlines; not wall-clock time.
  virtual absl::Time Now() const = 0;
};

// Monotonic clock reading as an absl::Time with an arbitrary epoch (for EventLoop::Now()).
inline absl::Time MonotonicNow() {
  return absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

}  // namespace pushgate::proxy
