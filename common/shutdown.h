// Graceful shutdown on SIGTERM/SIGINT. Construct first thing in main(), before any thread
// starts, so every thread inherits the blocked mask and only the watcher receives the signals.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace pushgate {

class ShutdownWatcher {
 public:
  ShutdownWatcher();  // blocks SIGTERM and SIGINT in the calling thread, ignores SIGPIPE
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

// OpenSSL writes to sockets with write(): a peer that closed raises SIGPIPE, which kills the
// process. Threads that write TLS sockets call this first: the write then fails with EPIPE (the
// thread-directed signal stays pending and is discarded when the thread ends). Nothing changes
// process-wide.
void BlockSigpipeInThisThread();

}  // namespace pushgate
