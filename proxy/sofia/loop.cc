#include "proxy/sofia/loop.h"

#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace pushgate::proxy::sofia {

struct PendingTimer {
  SofiaLoop* loop = nullptr;
  su_timer_t* timer = nullptr;
  std::function<void()> fn;

  static void OnTimer(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) noexcept {
    auto* self = reinterpret_cast<PendingTimer*>(arg);
    SofiaLoop* loop = self->loop;
    std::function<void()> fn = std::move(self->fn);
    auto it = std::find_if(loop->timers_.begin(), loop->timers_.end(),
                           [self](const auto& t) { return t.get() == self; });
    if (it != loop->timers_.end()) {
      su_timer_destroy((*it)->timer);
      loop->timers_.erase(it);
    }
    if (fn) fn();
  }
};

absl::StatusOr<std::unique_ptr<SofiaLoop>> SofiaLoop::Start() {
  std::unique_ptr<SofiaLoop> loop(new SofiaLoop());
  std::promise<absl::Status> started;
  std::future<absl::Status> started_future = started.get_future();
  SofiaLoop* raw = loop.get();
  loop->thread_ = std::thread([raw, &started] { raw->ThreadMain(&started); });
  absl::Status status = started_future.get();
  if (!status.ok()) {
    loop->thread_.join();
    {
      std::lock_guard<std::mutex> lock(loop->mu_);
      loop->stopped_ = true;
    }
    return status;
  }
  return loop;
}

SofiaLoop::~SofiaLoop() { Stop(); }

void SofiaLoop::ThreadMain(std::promise<absl::Status>* started) {
  thread_id_ = std::this_thread::get_id();
  if (su_init() != 0) {
    started->set_value(absl::InternalError("su_init failed"));
    return;
  }
  root_ = su_root_create(nullptr);
  if (root_ == nullptr) {
    su_deinit();
    started->set_value(absl::InternalError("su_root_create failed"));
    return;
  }
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) {
    su_root_destroy(root_);
    root_ = nullptr;
    su_deinit();
    started->set_value(absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno))));
    return;
  }
  su_wait_t wait[1];
  su_wait_create(wait, event_fd_, SU_WAIT_IN);
  wait_index_ = su_root_register(root_, wait, reinterpret_cast<su_wakeup_f>(&SofiaLoop::OnWakeup),
                                 reinterpret_cast<su_wakeup_arg_t*>(this), 0);
  if (wait_index_ < 0) {
    close(event_fd_);
    su_root_destroy(root_);
    root_ = nullptr;
    su_deinit();
    started->set_value(absl::InternalError("su_root_register failed"));
    return;
  }
  started->set_value(absl::OkStatus());

  su_root_run(root_);

  // Stopped: run what was queued before Stop(), then release every sofia object of this thread.
  Drain();
  for (auto& t : timers_) su_timer_destroy(t->timer);
  timers_.clear();
  su_root_deregister(root_, wait_index_);
  close(event_fd_);
  su_root_destroy(root_);
  root_ = nullptr;
  su_deinit();
}

int SofiaLoop::OnWakeup(void*, void*, void* arg) noexcept {
  auto* self = static_cast<SofiaLoop*>(arg);
  uint64_t count = 0;
  while (read(self->event_fd_, &count, sizeof(count)) > 0) {
  }
  self->Drain();
  bool stop = false;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    stop = self->stopped_;
  }
  if (stop) su_root_break(self->root_);
  return 0;
}

void SofiaLoop::Drain() {
  for (;;) {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(queue_);
    }
    if (batch.empty()) return;
    for (auto& fn : batch) fn();
  }
}

bool SofiaLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return false;
    queue_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  ssize_t n = write(event_fd_, &one, sizeof(one));
  (void)n;  // a full counter still wakes the loop
  return true;
}

void SofiaLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) {
      if (thread_.joinable() && !InLoopThread()) thread_.join();
      return;
    }
    stopped_ = true;
  }
  uint64_t one = 1;
  ssize_t n = write(event_fd_, &one, sizeof(one));
  (void)n;
  if (thread_.joinable()) thread_.join();
}

void SofiaLoop::RunAfter(unsigned delay_ms, std::function<void()> fn) {
  auto pending = std::make_unique<PendingTimer>();
  pending->loop = this;
  pending->fn = std::move(fn);
  pending->timer = su_timer_create(su_root_task(root_), delay_ms);
  if (pending->timer == nullptr) return;  // out of memory: the task is dropped
  su_timer_set(pending->timer, &PendingTimer::OnTimer,
               reinterpret_cast<su_timer_arg_t*>(pending.get()));
  timers_.push_back(std::move(pending));
}

}  // namespace pushgate::proxy::sofia
