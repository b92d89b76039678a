#include "proxy/store/poll_event_loop.h"

#include <poll.h>

#include <algorithm>
#include <vector>

namespace pushgate::proxy {

class PollEventLoop::PollWatch final : public EventLoop::FdWatch {
 public:
  PollWatch(PollEventLoop* loop, uint64_t id, std::shared_ptr<WatchEntry> entry)
      : loop_(loop), id_(id), entry_(std::move(entry)) {}
  ~PollWatch() override { loop_->watches_.erase(id_); }
  void SetEvents(bool read, bool write) override {
    entry_->read = read;
    entry_->write = write;
  }

 private:
  PollEventLoop* loop_;
  uint64_t id_;
  std::shared_ptr<WatchEntry> entry_;
};

class PollEventLoop::PollTimer final : public EventLoop::Timer {
 public:
  PollTimer(PollEventLoop* loop, uint64_t id, std::shared_ptr<TimerEntry> entry)
      : loop_(loop), id_(id), entry_(std::move(entry)) {}
  ~PollTimer() override { Stop(); }
  void Start(absl::Duration delay) override {
    Stop();
    if (delay < absl::ZeroDuration()) delay = absl::ZeroDuration();
    absl::Time deadline = loop_->Now() + delay;
    loop_->timers_.emplace(std::make_pair(deadline, id_), entry_);
    loop_->timer_deadlines_[id_] = deadline;
  }
  void Stop() override {
    auto it = loop_->timer_deadlines_.find(id_);
    if (it == loop_->timer_deadlines_.end()) return;
    loop_->timers_.erase(std::make_pair(it->second, id_));
    loop_->timer_deadlines_.erase(it);
  }
  bool active() const override { return loop_->timer_deadlines_.count(id_) != 0; }

 private:
  PollEventLoop* loop_;
  uint64_t id_;
  std::shared_ptr<TimerEntry> entry_;
};

PollEventLoop::~PollEventLoop() = default;

std::unique_ptr<EventLoop::FdWatch> PollEventLoop::WatchFd(int fd, FdCallback callback) {
  auto entry = std::make_shared<WatchEntry>();
  entry->fd = fd;
  entry->callback = std::move(callback);
  uint64_t id = next_id_++;
  watches_[id] = entry;
  return std::make_unique<PollWatch>(this, id, std::move(entry));
}

std::unique_ptr<EventLoop::Timer> PollEventLoop::CreateTimer(std::function<void()> callback) {
  auto entry = std::make_shared<TimerEntry>();
  entry->callback = std::move(callback);
  return std::make_unique<PollTimer>(this, next_id_++, std::move(entry));
}

int PollEventLoop::RunOnce(absl::Duration max_wait) {
  absl::Time now = Now();
  absl::Duration wait = max_wait;
  if (!timers_.empty()) wait = std::min(wait, timers_.begin()->first.first - now);
  if (wait < absl::ZeroDuration()) wait = absl::ZeroDuration();

  std::vector<pollfd> fds;
  std::vector<std::pair<uint64_t, std::weak_ptr<WatchEntry>>> ids;
  fds.reserve(watches_.size());
  for (const auto& [id, entry] : watches_) {
    short events = 0;
    if (entry->read) events |= POLLIN;
    if (entry->write) events |= POLLOUT;
    fds.push_back(pollfd{entry->fd, events, 0});
    ids.emplace_back(id, entry);
  }
  // Round up so a timer due in 0.3 ms does not spin with a 0 ms poll.
  int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(wait + absl::Microseconds(999)));
  int n = poll(fds.data(), fds.size(), timeout_ms);
  int ran = 0;
  if (n > 0) {
    for (size_t i = 0; i < fds.size(); ++i) {
      short revents = fds[i].revents;
      if (revents == 0) continue;
      // The watch may have been destroyed by an earlier callback of this iteration.
      if (watches_.count(ids[i].first) == 0) continue;
      std::shared_ptr<WatchEntry> entry = ids[i].second.lock();
      if (!entry) continue;
      bool readable = (revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) != 0;
      bool writable = (revents & POLLOUT) != 0;
      // `entry` keeps the callback alive if the watch is destroyed inside it.
      entry->callback(readable, writable);
      ++ran;
    }
  }
  // Due timers (a callback may arm or cancel others).
  now = Now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto it = timers_.begin();
    uint64_t id = it->first.second;
    std::shared_ptr<TimerEntry> entry = it->second;
    timers_.erase(it);
    timer_deadlines_.erase(id);
    entry->callback();
    ++ran;
  }
  return ran;
}

bool PollEventLoop::RunUntil(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time deadline = Now() + timeout;
  while (!done()) {
    absl::Time now = Now();
    if (now >= deadline) return done();
    RunOnce(std::min(deadline - now, absl::Milliseconds(50)));
  }
  return true;
}

size_t PollEventLoop::write_watch_count() const {
  return static_cast<size_t>(std::count_if(watches_.begin(), watches_.end(),
                                           [](const auto& entry) { return entry.second->write; }));
}

void PollEventLoop::RunFor(absl::Duration duration) {
  absl::Time deadline = Now() + duration;
  for (absl::Time now = Now(); now < deadline; now = Now()) RunOnce(deadline - now);
}

}  // namespace pushgate::proxy
