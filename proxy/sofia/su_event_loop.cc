#include "proxy/sofia/su_event_loop.h"

#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/log.h"
#include "proxy/sofia/loop.h"

namespace pushgate::proxy::sofia {
namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static const std::shared_ptr<spdlog::logger> logger = log::Get("proxy.sofia");
  return logger;
}

class SuFdWatch final : public EventLoop::FdWatch {
 public:
  SuFdWatch(su_root_t* root, int fd, EventLoop::FdCallback callback)
      : root_(root),
        fd_(fd),
        callback_(std::make_shared<EventLoop::FdCallback>(std::move(callback))) {
    su_wait_t wait[1];
    // su_wait_create refuses an empty mask (EINVAL): register with IN, then clear the mask.
    if (su_wait_create(wait, fd_, SU_WAIT_IN) != 0) {
      Logger()->error("su_wait_create failed fd={} error=\"{}\"", fd_, std::strerror(errno));
      return;
    }
    index_ = su_root_register(root_, wait, &SuFdWatch::OnEvent, this, su_pri_normal);
    if (index_ < 0) {
      su_wait_destroy(wait);
      Logger()->error("su_root_register failed fd={}", fd_);
      return;
    }
    su_root_eventmask(root_, index_, fd_, 0);
  }
  ~SuFdWatch() override {
    if (index_ >= 0) su_root_deregister(root_, index_);
  }

  void SetEvents(bool read, bool write) override {
    if (index_ < 0) return;
    int events = (read ? SU_WAIT_IN : 0) | (write ? SU_WAIT_OUT : 0);
    su_root_eventmask(root_, index_, fd_, events);
  }

 private:
  static int OnEvent(su_root_magic_t*, su_wait_t* wait, su_wakeup_arg_t* arg) noexcept {
    auto* self = static_cast<SuFdWatch*>(arg);
    int revents = su_wait_events(wait, self->fd_);
    bool readable = (revents & (SU_WAIT_IN | SU_WAIT_ERR | SU_WAIT_HUP)) != 0;
    bool writable = (revents & SU_WAIT_OUT) != 0;
    // The watch may be destroyed by its own callback: keep the callback alive while it runs.
    std::shared_ptr<EventLoop::FdCallback> callback = self->callback_;
    (*callback)(readable, writable);
    return 0;
  }

  su_root_t* root_;
  int fd_;
  int index_ = -1;
  std::shared_ptr<EventLoop::FdCallback> callback_;
};

class SuTimer final : public EventLoop::Timer {
 public:
  SuTimer(su_root_t* root, std::function<void()> callback)
      : timer_(su_timer_create(su_root_task(root), 0)),
        callback_(std::make_shared<std::function<void()>>(std::move(callback))) {
    if (timer_ == nullptr) Logger()->error("su_timer_create failed");
  }
  ~SuTimer() override {
    if (timer_ != nullptr) su_timer_destroy(timer_);
  }

  void Start(absl::Duration delay) override {
    if (timer_ == nullptr) return;
    // Millisecond resolution: round up so the deadline has passed when the timer fires.
    int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(delay, absl::Milliseconds(1)));
    if (ms < 0) ms = 0;
    su_timer_reset(timer_);
    active_ =
        su_timer_set_interval(timer_, &SuTimer::OnTimer, this, static_cast<su_duration_t>(ms)) == 0;
  }
  void Stop() override {
    if (timer_ != nullptr) su_timer_reset(timer_);
    active_ = false;
  }
  bool active() const override { return active_; }

 private:
  static void OnTimer(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) noexcept {
    auto* self = static_cast<SuTimer*>(arg);
    self->active_ = false;
    std::shared_ptr<std::function<void()>> callback = self->callback_;  // may destroy `self`
    (*callback)();
  }

  su_timer_t* timer_;
  bool active_ = false;
  std::shared_ptr<std::function<void()>> callback_;
};

}  // namespace

su_root_t* SuEventLoop::root() { return loop_ != nullptr ? loop_->root() : root_; }

std::unique_ptr<EventLoop::FdWatch> SuEventLoop::WatchFd(int fd, FdCallback callback) {
  return std::make_unique<SuFdWatch>(root(), fd, std::move(callback));
}

std::unique_ptr<EventLoop::Timer> SuEventLoop::CreateTimer(std::function<void()> callback) {
  return std::make_unique<SuTimer>(root(), std::move(callback));
}

}  // namespace pushgate::proxy::sofia
