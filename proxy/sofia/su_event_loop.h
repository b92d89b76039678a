// EventLoop (proxy/store/event_loop.h) on a sofia su_root, so the Redis binding store runs on the
// proxy's sofia loop thread without knowing sofia: fd watches through su_wait_create/
// su_root_register/su_root_eventmask, timers through su_timer. Create it anywhere; use it (and
// every watch/timer it creates) on the su_root's thread only, and destroy the watches and timers
// before the su_root.
#pragma once

#include <functional>
#include <memory>

#include "proxy/store/event_loop.h"

struct su_root_s;

namespace pushgate::proxy::sofia {

class SofiaLoop;

class SuEventLoop final : public EventLoop {
 public:
  // On a bare su_root (tests, tools).
  explicit SuEventLoop(su_root_s* root) : root_(root) {}
  // On the proxy's SofiaLoop (its root is read on the loop thread, when first needed).
  explicit SuEventLoop(SofiaLoop& loop) : loop_(&loop) {}

  std::unique_ptr<FdWatch> WatchFd(int fd, FdCallback callback) override;
  std::unique_ptr<Timer> CreateTimer(std::function<void()> callback) override;
  absl::Time Now() const override { return MonotonicNow(); }

 private:
  su_root_s* root();

  su_root_s* root_ = nullptr;
  SofiaLoop* loop_ = nullptr;
};

}  // namespace pushgate::proxy::sofia
