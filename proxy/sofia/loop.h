// The proxy's one sofia event loop: a thread that owns an su_root (and everything created on it:
// the nta agent, transports, transactions, timers). Other threads never touch SIP state; they
// hand work to the loop with Post() (an eventfd registered with su_root_register wakes it).
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

struct su_root_s;
struct su_timer_s;

namespace pushgate::proxy::sofia {

class SofiaLoop final {
 public:
  // Starts the loop thread (su_init, su_root_create on that thread) and waits until it runs.
  static absl::StatusOr<std::unique_ptr<SofiaLoop>> Start();
  ~SofiaLoop();  // Stop(), then join
  SofiaLoop(const SofiaLoop&) = delete;
  SofiaLoop& operator=(const SofiaLoop&) = delete;

  // Queues `fn` to run on the loop thread; thread-safe. Answers false (and drops `fn`) once the
  // loop has stopped.
  bool Post(std::function<void()> fn);

  // Runs `fn` on the loop thread and waits for its result (inline when already on it).
  template <typename F>
  auto Call(F fn) -> std::invoke_result_t<F> {
    using R = std::invoke_result_t<F>;
    if (InLoopThread()) return fn();
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    std::future<R> result = task->get_future();
    if (!Post([task] { (*task)(); })) {
      // Loop gone: run here; only teardown code reaches this, after the loop released its root.
      (*task)();
    }
    return result.get();
  }

  // Breaks su_root_run and joins the thread; tasks still queued run first. Idempotent; never
  // call it from the loop thread.
  void Stop();

  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_; }
  // Only valid on the loop thread.
  su_root_s* root() const { return root_; }

  // Runs `fn` on the loop thread after `delay_ms`; call on the loop thread. The timer is owned by
  // the loop and freed after it fires (or at Stop()).
  void RunAfter(unsigned delay_ms, std::function<void()> fn);

 private:
  SofiaLoop() = default;
  void ThreadMain(std::promise<absl::Status>* started);
  void Drain();
  static int OnWakeup(void* magic, void* wait, void* arg) noexcept;

  std::thread thread_;
  std::thread::id thread_id_;
  su_root_s* root_ = nullptr;
  int event_fd_ = -1;
  int wait_index_ = -1;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;                  // guarded by mu_
  bool stopped_ = false;                                      // guarded by mu_
  std::vector<std::unique_ptr<struct PendingTimer>> timers_;  // loop thread only
  friend struct PendingTimer;
};

}  // namespace pushgate::proxy::sofia
