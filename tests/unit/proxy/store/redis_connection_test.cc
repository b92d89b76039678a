// RedisConnection against a real redis-server (unix socket in a temp dir): pipelining in order,
// error replies, every handler answered exactly once (also when the connection is destroyed), and
// the subscription renewed after a reconnection.
#include "proxy/store/redis_connection.h"

#include <hiredis/hiredis.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/store/poll_event_loop.h"
#include "tests/unit/proxy/store/redis_test_server.h"

namespace pushgate::proxy {
namespace {

using ::pushgate::proxy::testing::RedisTestServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RedisConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = server_.Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  std::unique_ptr<RedisConnection> Connect(const std::string& channel = "",
                                           std::vector<std::string>* messages = nullptr) {
    auto address = ParseRedisAddress(server_.address());
    EXPECT_TRUE(address.ok()) << address.status();
    RedisConnection::Options options;
    options.name = "test";
    options.address = *address;
    options.min_backoff = absl::Milliseconds(20);
    options.max_backoff = absl::Milliseconds(100);
    auto connection = std::make_unique<RedisConnection>(loop_, options);
    if (!channel.empty()) {
      connection->SetSubscription(channel, [messages](absl::string_view payload) {
        messages->push_back(std::string(payload));
      });
    }
    connection->Start();
    EXPECT_TRUE(Until([&] { return connection->up(); }, "the connection coming up"))
        << connection->last_error();
    return connection;
  }

  ::testing::AssertionResult Until(const std::function<bool()>& done, absl::string_view what) {
    if (loop_.RunUntil(done, absl::Seconds(5))) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "never happened within 5s: " << what;
  }

  // The reply as text ("(nil)", integers in decimal, strings as they are) or the status.
  static std::string Text(absl::StatusOr<const redisReply*> reply) {
    if (!reply.ok()) return reply.status().ToString();
    const redisReply* r = *reply;
    if (r->type == REDIS_REPLY_NIL) return "(nil)";
    if (r->type == REDIS_REPLY_INTEGER) return absl::StrCat(r->integer);
    return std::string(r->str, r->len);
  }

  RedisTestServer server_;
  PollEventLoop loop_;
};

TEST_F(RedisConnectionTest, PipelinedCommandsAreAnsweredInOrder) {
  auto connection = Connect();
  std::vector<std::string> answers;
  auto record = [&](const absl::StatusOr<const redisReply*>& reply) {
    answers.push_back(Text(reply));
  };
  connection->Command({"SET", "k", "v1"}, record);
  connection->Command({"GET", "k"}, record);
  connection->Command({"INCR", "n"}, record);
  connection->Command({"INCR", "n"}, record);
  connection->Command({"GET", "missing"}, record);
  ASSERT_TRUE(Until([&] { return answers.size() == 5; }, "5 answers"));
  EXPECT_THAT(answers, ElementsAre("OK", "v1", "1", "2", "(nil)"));
}

TEST_F(RedisConnectionTest, ErrorReplyIsInternalAndTheConnectionStaysUp) {
  auto connection = Connect();
  std::vector<std::string> answers;
  auto record = [&](const absl::StatusOr<const redisReply*>& reply) {
    answers.push_back(Text(reply));
  };
  connection->Command({"SET", "k", "v"}, record);
  connection->Command({"LPUSH", "k", "x"}, record);  // WRONGTYPE
  connection->Command({"GET", "k"}, record);
  ASSERT_TRUE(Until([&] { return answers.size() == 3; }, "3 answers"));
  EXPECT_EQ(answers[0], "OK");
  EXPECT_THAT(answers[1], HasSubstr("INTERNAL: redis error: WRONGTYPE"));
  EXPECT_EQ(answers[2], "v");
  EXPECT_TRUE(connection->up());
}

TEST_F(RedisConnectionTest, DestroyingAnswersPendingCommandsOnce) {
  auto connection = Connect();
  server_.Pause();
  int calls = 0;
  absl::Status status;
  connection->Command({"PING"}, [&](const absl::StatusOr<const redisReply*>& reply) {
    ++calls;
    status = reply.status();
  });
  ASSERT_TRUE(Until([&] { return loop_.write_watch_count() == 0; }, "PING being written"));
  EXPECT_EQ(calls, 0);
  connection.reset();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  server_.Resume();
}

TEST_F(RedisConnectionTest, DownMeansUnavailableAtOnceWithARetryHint) {
  auto connection = Connect();
  server_.Stop();
  ASSERT_TRUE(Until([&] { return !connection->up(); }, "the connection noticing Redis died"));
  bool called = false;
  connection->Command({"PING"}, [&](const absl::StatusOr<const redisReply*>& reply) {
    called = true;
    EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  });
  EXPECT_TRUE(called) << "a command on a down connection must be answered at once";
  EXPECT_THAT(std::string(connection->last_error().message()), HasSubstr("redis unavailable: "));
  EXPECT_GE(connection->RetryAfter(), absl::Seconds(1));
}

TEST_F(RedisConnectionTest, SubscriptionIsRenewedAfterAReconnection) {
  std::vector<std::string> messages;
  auto subscriber = Connect("news", &messages);
  ASSERT_TRUE(Until([&] { return subscriber->subscribed(); }, "the subscription"));
  ASSERT_TRUE(server_.Command({"PUBLISH", "news", "one"}).ok());
  ASSERT_TRUE(Until([&] { return messages.size() == 1; }, "message one"));
  server_.Stop();
  ASSERT_TRUE(Until([&] { return !subscriber->subscribed(); }, "the subscription ending"));
  ASSERT_TRUE(server_.Start().ok());
  ASSERT_TRUE(Until([&] { return subscriber->subscribed(); }, "the subscription being renewed"));
  ASSERT_TRUE(server_.Command({"PUBLISH", "news", "two"}).ok());
  ASSERT_TRUE(Until([&] { return messages.size() == 2; }, "message two"));
  EXPECT_THAT(messages, ElementsAre("one", "two"));
}

}  // namespace
}  // namespace pushgate::proxy
