// PollEventLoop and SuEventLoop (sofia su_root) against the EventLoop contract: fd readiness,
// one-shot timers, re-arming and destruction from inside callbacks. The Redis store also runs on
// SuEventLoop here (a real redis-server), as it will in the proxy.
#include <fcntl.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "proxy/core/registrar.h"
#include "proxy/sofia/su_event_loop.h"
#include "proxy/store/poll_event_loop.h"
#include "proxy/store/redis_binding_store.h"
#include "tests/unit/proxy/store/redis_test_server.h"

namespace pushgate::proxy {
namespace {

// Drives either loop for the shared tests.
class Driver {
 public:
  virtual ~Driver() = default;
  virtual EventLoop& loop() = 0;
  virtual bool RunUntil(const std::function<bool()>& done, absl::Duration timeout) = 0;
};

class PollDriver final : public Driver {
 public:
  EventLoop& loop() override { return loop_; }
  bool RunUntil(const std::function<bool()>& done, absl::Duration timeout) override {
    return loop_.RunUntil(done, timeout);
  }

 private:
  PollEventLoop loop_;
};

class SofiaDriver final : public Driver {
 public:
  SofiaDriver() {
    su_init();
    root_ = su_root_create(nullptr);
    loop_ = std::make_unique<sofia::SuEventLoop>(root_);
  }
  ~SofiaDriver() override {
    loop_.reset();
    su_root_destroy(root_);
    su_deinit();
  }
  EventLoop& loop() override { return *loop_; }
  bool RunUntil(const std::function<bool()>& done, absl::Duration timeout) override {
    absl::Time deadline = absl::Now() + timeout;
    while (!done()) {
      if (absl::Now() >= deadline) return done();
      su_root_step(root_, 10);
    }
    return true;
  }

 private:
  su_root_t* root_ = nullptr;
  std::unique_ptr<sofia::SuEventLoop> loop_;
};

class EventLoopTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "poll") {
      driver_ = std::make_unique<PollDriver>();
    } else {
      driver_ = std::make_unique<SofiaDriver>();
    }
  }
  void TearDown() override { driver_.reset(); }
  EventLoop& loop() { return driver_->loop(); }
  // Runs the loop until `done()` holds; the failure says what never happened.
  ::testing::AssertionResult Until(const std::function<bool()>& done, absl::string_view what,
                                   absl::Duration timeout = absl::Seconds(3)) {
    if (driver_->RunUntil(done, timeout)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "never happened within " << absl::FormatDuration(timeout) << ": " << what;
  }
  // Runs the loop until it reports a pipe that is readable now. poll(2) and epoll report every
  // ready descriptor of a wait at once, and the loop serves them all before returning, so a
  // descriptor that is ready with its events enabled has been reported by then too: for checks
  // that something is NOT reported, without waiting for a length of time.
  ::testing::AssertionResult UntilOneWaitServed() {
    int fds[2];
    if (pipe(fds) != 0) return ::testing::AssertionFailure() << "pipe failed";
    bool served = false;
    auto watch = loop().WatchFd(fds[0], [&](bool readable, bool) { served |= readable; });
    watch->SetEvents(true, false);
    ::testing::AssertionResult result =
        write(fds[1], "x", 1) == 1 ? Until([&] { return served; }, "a readable pipe being reported")
                                   : ::testing::AssertionFailure() << "write to the pipe failed";
    watch.reset();
    close(fds[0]);
    close(fds[1]);
    return result;
  }
  std::unique_ptr<Driver> driver_;
};

TEST_P(EventLoopTest, TimersFireInOrderAndStopCancels) {
  std::vector<int> fired;
  auto t1 = loop().CreateTimer([&] { fired.push_back(1); });
  auto t2 = loop().CreateTimer([&] { fired.push_back(2); });
  auto t3 = loop().CreateTimer([&] { fired.push_back(3); });
  t2->Start(absl::Milliseconds(40));
  t1->Start(absl::Milliseconds(10));
  t3->Start(absl::Milliseconds(20));
  EXPECT_TRUE(t3->active());
  t3->Stop();
  EXPECT_FALSE(t3->active());
  ASSERT_TRUE(Until([&] { return fired.size() == 2; }, "timers 1 and 2 firing"));
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
  EXPECT_FALSE(t1->active());
}

TEST_P(EventLoopTest, TimerCanRearmAndDestroyItselfInItsCallback) {
  int count = 0;
  std::unique_ptr<EventLoop::Timer> timer;
  timer = loop().CreateTimer([&] {
    if (++count < 3) {
      timer->Start(absl::Milliseconds(1));
    } else {
      timer.reset();
    }
  });
  timer->Start(absl::Milliseconds(1));
  ASSERT_TRUE(Until([&] { return timer == nullptr; }, "the timer firing 3 times"))
      << "it fired " << count << " times";
  EXPECT_EQ(count, 3);
}

TEST_P(EventLoopTest, FdWatchReportsReadAndWriteAsEnabled) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  int readable = 0;
  int writable = 0;
  auto reader = loop().WatchFd(fds[0], [&](bool r, bool) {
    if (r) {
      char buf[16];
      while (read(fds[0], buf, sizeof(buf)) > 0) {
      }
      ++readable;
    }
  });
  auto writer = loop().WatchFd(fds[1], [&](bool, bool w) {
    if (w) ++writable;
  });
  // No events enabled yet: nothing reported although the pipe is writable.
  ASSERT_TRUE(UntilOneWaitServed());
  EXPECT_EQ(writable, 0);
  writer->SetEvents(false, true);
  ASSERT_TRUE(Until([&] { return writable > 0; }, "write readiness being reported"));
  writer->SetEvents(false, false);
  reader->SetEvents(true, false);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  ASSERT_TRUE(Until([&] { return readable > 0; }, "read readiness being reported"));
  int writable_after = writable;
  ASSERT_TRUE(UntilOneWaitServed());
  EXPECT_EQ(writable, writable_after) << "write events reported after disabling them";
  reader.reset();
  writer.reset();
  close(fds[0]);
  close(fds[1]);
}

TEST_P(EventLoopTest, WatchMayBeDestroyedInsideItsCallback) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int calls = 0;
  std::unique_ptr<EventLoop::FdWatch> watch;
  watch = loop().WatchFd(fds[0], [&](bool, bool) {
    ++calls;
    watch.reset();
  });
  watch->SetEvents(true, false);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  ASSERT_TRUE(Until([&] { return watch == nullptr; }, "the watch's callback running"));
  ASSERT_TRUE(UntilOneWaitServed());
  EXPECT_EQ(calls, 1);
  close(fds[0]);
  close(fds[1]);
}

// The Redis store on both loops (the proxy uses SuEventLoop).
TEST_P(EventLoopTest, RedisStoreRunsOnThisLoop) {
  testing::RedisTestServer server;
  ASSERT_TRUE(server.Start().ok());
  RedisStoreConfig config;
  config.address = server.address();
  auto store = RedisBindingStore::Create(loop(), config);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(Until([&] { return (*store)->connected() && (*store)->listening(); },
                    "the store connecting and subscribing"))
      << (*store)->last_error();
  absl::Time now = absl::Now();
  RegisterRequest r;
  r.aor = "sip:bob@example.org";
  auto contacts = ParseContacts("<sip:bob@192.0.2.9;pn-provider=fcm;pn-param=p;pn-prid=t1>");
  ASSERT_TRUE(contacts.ok());
  Binding b = MakeBinding(r, contacts->contacts.at(0), absl::Minutes(10), now);
  bool replaced = false;
  (*store)->Replace(r.aor, {b}, now, [&](const absl::Status& s) {
    EXPECT_TRUE(s.ok()) << s;
    replaced = true;
  });
  ASSERT_TRUE(Until([&] { return replaced; }, "the answer to Replace"));
  std::vector<Binding> got;
  bool fetched = false;
  (*store)->Fetch(r.aor, now, [&](absl::StatusOr<std::vector<Binding>> v) {
    ASSERT_TRUE(v.ok()) << v.status();
    got = *v;
    fetched = true;
  });
  ASSERT_TRUE(Until([&] { return fetched; }, "the answer to Fetch"));
  EXPECT_EQ(got, std::vector<Binding>{b});
  // Outage on this loop too: killed server -> UNAVAILABLE, restart -> reconnects.
  server.Stop();
  bool failed = false;
  (*store)->Fetch(r.aor, now, [&](const absl::StatusOr<std::vector<Binding>>& v) {
    EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable) << v.status();
    failed = true;
  });
  ASSERT_TRUE(Until([&] { return failed; }, "the answer to Fetch after the kill"));
  ASSERT_TRUE(server.Start().ok());
  EXPECT_TRUE(
      Until([&] { return (*store)->connected(); }, "the store reconnecting", absl::Seconds(6)))
      << (*store)->last_error();
  store->reset();
}

INSTANTIATE_TEST_SUITE_P(Loops, EventLoopTest, ::testing::Values("poll", "sofia"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace pushgate::proxy
