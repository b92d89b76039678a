#include "common/shutdown.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "common/log.h"

namespace pushgate {
namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

ShutdownWatcher::ShutdownWatcher() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A service process never wants to die of a peer closing its socket: writes fail with EPIPE.
  signal(SIGPIPE, SIG_IGN);
}

void ShutdownWatcher::Start(std::function<void(int)> on_signal) {
  thread_ = std::thread([this, on_signal = std::move(on_signal)] {
    sigset_t set = ShutdownSignals();
    bool fired = false;
    for (;;) {
      int signo = 0;
      if (sigwait(&set, &signo) != 0) continue;
      if (stopping_.load()) return;
      if (!fired) {
        fired = true;
        log::Get("main")->info("signal={} shutting down gracefully (again to force)", signo);
        on_signal(signo);
      } else {
        log::Get("main")->warn("signal={} received while draining, exiting now", signo);
        _exit(128 + signo);
      }
    }
  });
}

void BlockSigpipeInThisThread() {
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
}

ShutdownWatcher::~ShutdownWatcher() {
  if (thread_.joinable()) {
    stopping_.store(true);
    // Wakes the watcher's sigwait (SIGTERM is blocked, so it only ends that wait): on purpose.
    pthread_kill(thread_.native_handle(), SIGTERM);  // NOLINT(bugprone-bad-signal-to-kill-thread)
    thread_.join();
  }
}

}  // namespace pushgate
