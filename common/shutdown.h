// Graceful shutdown on SIGTERM/SIGINT. Construct first thing in main(), before any thread
// starts, so every thread inherits the blocked mask and only the watcher receives the signals.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace pushgate {

class ShutdownWatcher {
 public:
  ShutdownWatcher();  // blocks SIGTERM and SIGINT in the calling thread
  ~ShutdownWatcher();
  ShutdownWatcher(const ShutdownWatcher&) = delete;
  ShutdownWatcher& operator=(const ShutdownWatcher&) = delete;

  // Calls `on_signal(signo)` from the watcher thread on the first signal. A second signal while
  // draining exits the process at once with 128 + signo.
  void Start(std::function<void(int)> on_signal);

 private:
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

}  // namespace pushgate
