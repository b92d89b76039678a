// SuEventLoop: the EventLoop the Redis store runs on, backed by the proxy's su_root.
#include "proxy/sofia/su_event_loop.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

#include "absl/strings/string_view.h"
#include "proxy/sofia/loop.h"

namespace pushgate::proxy::sofia {
namespace {

constexpr auto kWait = std::chrono::seconds(3);

// `event` happened within `timeout`; otherwise says that `what` never did.
::testing::AssertionResult Happens(std::future<void>& event, std::chrono::milliseconds timeout,
                                   absl::string_view what) {
  if (event.wait_for(timeout) == std::future_status::ready) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << " never happened within " << timeout.count() << "ms";
}

// "Nothing happens within `window`": `event` is still not ready when the window ends.
::testing::AssertionResult NotWithin(std::future<void>& event, std::chrono::milliseconds window,
                                     absl::string_view what) {
  if (event.wait_for(window) == std::future_status::timeout) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << " happened within " << window.count() << "ms";
}

class SuEventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = SofiaLoop::Start();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    events_ = loop_->Call([this] { return std::make_unique<SuEventLoop>(loop_->root()); });
    ASSERT_EQ(pipe(fds_), 0);
  }
  void TearDown() override {
    loop_->Call([this] {
      watch_.reset();
      timer_.reset();
      events_.reset();
    });
    loop_->Stop();
    close(fds_[0]);
    close(fds_[1]);
  }

  std::unique_ptr<SofiaLoop> loop_;
  std::unique_ptr<SuEventLoop> events_;
  std::unique_ptr<EventLoop::FdWatch> watch_;
  std::unique_ptr<EventLoop::Timer> timer_;
  int fds_[2] = {-1, -1};
};

TEST_F(SuEventLoopTest, ReportsReadableOnlyOnceEnabledAndCanDestroyItselfInCallback) {
  std::promise<void> readable;
  std::promise<void> reported_again;  // must never be set
  std::future<void> readable_event = readable.get_future();
  std::future<void> again_event = reported_again.get_future();
  std::atomic<int> calls{0};
  loop_->Call([&] {
    watch_ = events_->WatchFd(fds_[0], [&](bool r, bool) {
      if (!r) return;
      char c;
      ASSERT_EQ(read(fds_[0], &c, 1), 1);
      int n = ++calls;
      watch_.reset();  // destroyed from inside its own callback
      (n == 1 ? readable : reported_again).set_value();
    });
  });
  ASSERT_EQ(write(fds_[1], "x", 1), 1);
  // Not enabled yet: nothing reported.
  EXPECT_TRUE(NotWithin(readable_event, std::chrono::milliseconds(50),
                        "a readable event before the watch was enabled"));
  EXPECT_EQ(calls.load(), 0);
  loop_->Call([&] { watch_->SetEvents(true, false); });
  ASSERT_TRUE(Happens(readable_event, kWait, "the readable event"));
  ASSERT_EQ(write(fds_[1], "y", 1), 1);
  EXPECT_TRUE(NotWithin(again_event, std::chrono::milliseconds(50),
                        "an event after the watch was destroyed"));
  EXPECT_EQ(calls.load(), 1) << "events after the watch was destroyed";
}

TEST_F(SuEventLoopTest, ReportsWritable) {
  std::promise<void> writable;
  loop_->Call([&] {
    watch_ = events_->WatchFd(fds_[1], [&](bool, bool w) {
      if (!w) return;
      watch_->SetEvents(false, false);
      writable.set_value();
    });
    watch_->SetEvents(false, true);
  });
  EXPECT_EQ(writable.get_future().wait_for(kWait), std::future_status::ready)
      << "the writable event never arrived";
}

TEST_F(SuEventLoopTest, TimerFiresOnceAfterDelayAndStopCancels) {
  std::promise<void> fired;
  std::promise<void> fired_again;  // must never be set
  std::future<void> fired_event = fired.get_future();
  std::future<void> again_event = fired_again.get_future();
  std::atomic<int> count{0};
  auto start = std::chrono::steady_clock::now();
  loop_->Call([&] {
    timer_ = events_->CreateTimer([&] {
      int n = ++count;
      if (n == 1) fired.set_value();
      if (n == 2) fired_again.set_value();
    });
    EXPECT_FALSE(timer_->active());
    timer_->Start(absl::Milliseconds(30));
    EXPECT_TRUE(timer_->active());
  });
  ASSERT_TRUE(Happens(fired_event, kWait, "the timer firing"));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(25));
  EXPECT_FALSE(loop_->Call([&] { return timer_->active(); }));

  loop_->Call([&] {
    timer_->Start(absl::Milliseconds(30));
    timer_->Stop();
  });
  EXPECT_TRUE(NotWithin(again_event, std::chrono::milliseconds(80), "a stopped timer firing"));
  EXPECT_EQ(count.load(), 1) << "a stopped timer fired";
}

TEST_F(SuEventLoopTest, PostRunsOnLoopThreadInOrder) {
  std::vector<int> seen;
  std::promise<void> done;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(loop_->Post([&, i] {
      EXPECT_TRUE(loop_->InLoopThread());
      seen.push_back(i);
      if (i == 99) done.set_value();
    }));
  }
  ASSERT_EQ(done.get_future().wait_for(kWait), std::future_status::ready);
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
}

}  // namespace
}  // namespace pushgate::proxy::sofia
