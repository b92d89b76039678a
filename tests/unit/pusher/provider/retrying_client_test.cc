// RetryingClient against a fake HTTP/2 client, a FakeClock and a fake scheduler: which answers
// and failures are retried, after which delays, and when it gives up.
#include "pusher/provider/retrying_client.h"

#include <optional>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http2_client.h"
#include "tests/fakes/fake_scheduler.h"

namespace pushgate::pusher {
namespace {

using http2::FailureReason;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// APNs-like backend: builds a fixed request, records what the client tells it.
class FakeBackend final : public ProviderBackend {
 public:
  v1::Provider provider() const override { return v1::APNS; }
  void Prepare(const v1::PushRequest& request, absl::Time,
               std::function<void(absl::StatusOr<http2::Request>)> done) override {
    ++prepared;
    if (!prepare_errors.empty()) {
      absl::Status error = prepare_errors.front();
      prepare_errors.erase(prepare_errors.begin());
      done(error);
      return;
    }
    http2::Request http;
    http.path = "/3/device/" + request.destination().device_token();
    http.headers = {{"authorization", "bearer token-" + std::to_string(prepared)}};
    done(std::move(http));
  }
  bool OnAuthRejected(absl::string_view reason, absl::Time) override {
    auth_rejections.emplace_back(reason);
    return refresh_on_auth_rejected;
  }
  std::string MessageId(const http2::Response& response) const override {
    return response.Header("apns-id");
  }
  void OnAccepted() override { ++accepted; }
  std::string Problem() const override { return ""; }

  int prepared = 0;
  int accepted = 0;
  std::vector<absl::Status> prepare_errors;  // answered by the next Prepare calls
  bool refresh_on_auth_rejected = false;
  std::vector<std::string> auth_rejections;
};

std::string ReasonName(const ::testing::TestParamInfo<FailureReason>& param_info) {
  return std::string(http2::FailureReasonName(param_info.param));
}

class RetryingClientTest : public ::testing::Test {
 protected:
  RetryingClientTest() : scheduler_(clock_) {
    policy_.initial = absl::Milliseconds(100);
    policy_.multiplier = 2.0;
    policy_.max = absl::Seconds(1);
    policy_.jitter = 0;  // delays are exact
    policy_.max_attempts = 5;
    auto http = std::make_unique<FakeHttp2Client>();
    http_ = http.get();
    auto backend = std::make_unique<FakeBackend>();
    backend_ = backend.get();
    client_ = std::make_unique<RetryingClient>("test", std::move(http), std::move(backend), policy_,
                                               scheduler_, clock_);
  }

  // Sends one push with `timeout` left; its result lands in result_.
  void Send(absl::Duration timeout = absl::Seconds(10)) {
    v1::PushRequest request;
    request.set_request_id("req-1");
    request.mutable_destination()->set_provider(v1::APNS);
    request.mutable_destination()->set_device_token("abcd");
    deadline_ = clock_.Now() + timeout;
    client_->Send(std::move(request), deadline_, [this](absl::StatusOr<v1::PushResult> result) {
      ASSERT_FALSE(result_.has_value()) << "answered twice";
      result_ = std::move(result);
    });
  }

  // The verdict (fails the test when there is none, or it is an error status).
  v1::PushResult Verdict() {
    EXPECT_TRUE(result_.has_value()) << "no answer yet";
    if (!result_.has_value()) return {};
    EXPECT_TRUE(result_->ok()) << result_->status();
    return result_->ok() ? **result_ : v1::PushResult();
  }

  FakeClock clock_;
  FakeScheduler scheduler_;
  RetryPolicy policy_;
  absl::Time deadline_;
  std::optional<absl::StatusOr<v1::PushResult>> result_;  // outlives client_, which may answer
  FakeHttp2Client* http_;
  FakeBackend* backend_;
  std::unique_ptr<RetryingClient> client_;
};

TEST_F(RetryingClientTest, AcceptedAtOnceCarriesTheMessageIdAndTheDeadline) {
  Send();
  ASSERT_EQ(http_->pending(), 1u);
  EXPECT_EQ(http_->submitted()[0].deadline, deadline_);
  EXPECT_EQ(http_->submitted()[0].path, "/3/device/abcd");
  ASSERT_TRUE(http_->Respond(200, "", {{"apns-id", "id-1"}}));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::ACCEPTED);
  EXPECT_EQ(result.provider_message_id(), "id-1");
  EXPECT_EQ(result.request_id(), "req-1");
  EXPECT_EQ(result.attempts(), 1);
  EXPECT_EQ(backend_->accepted, 1);
  EXPECT_EQ(scheduler_.pending(), 0u);
}

// Failures that never reached the provider: sent again after the policy's first delay.
class NeverSentTest : public RetryingClientTest,
                      public ::testing::WithParamInterface<FailureReason> {};

TEST_P(NeverSentTest, IsRetriedAfterTheBackoff) {
  Send();
  ASSERT_TRUE(http_->Fail(GetParam(), absl::UnavailableError("no connection")));
  EXPECT_FALSE(result_.has_value()) << "answered instead of retrying";
  EXPECT_THAT(scheduler_.requested_delays(), ElementsAre(absl::Milliseconds(100)));
  EXPECT_EQ(http_->pending(), 0u) << "retried before the delay";
  ASSERT_TRUE(scheduler_.RunNext());
  ASSERT_EQ(http_->pending(), 1u);
  ASSERT_TRUE(http_->Respond(200));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::ACCEPTED);
  EXPECT_EQ(result.attempts(), 2);
}

INSTANTIATE_TEST_SUITE_P(Reasons, NeverSentTest,
                         ::testing::Values(FailureReason::kInvalidRequest,
                                           FailureReason::kTlsFailure, FailureReason::kNotSent),
                         ReasonName);

// Failures after which the provider may have processed the push: never sent again.
class MayHaveBeenDeliveredTest : public RetryingClientTest,
                                 public ::testing::WithParamInterface<FailureReason> {};

TEST_P(MayHaveBeenDeliveredTest, IsAnsweredRetryLaterWithoutRetrying) {
  Send();
  // Wording that says nothing about delivery: the decision must come from the reason.
  ASSERT_TRUE(http_->Fail(GetParam(), absl::UnavailableError("connection to apns lost")));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::RETRY_LATER);
  EXPECT_EQ(result.reason(), "connection to apns lost");
  EXPECT_EQ(result.attempts(), 1);
  EXPECT_EQ(scheduler_.pending(), 0u);
  EXPECT_EQ(http_->submitted().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Reasons, MayHaveBeenDeliveredTest,
                         ::testing::Values(FailureReason::kConnectionLost,
                                           FailureReason::kStreamReset,
                                           FailureReason::kResponseTooLarge),
                         ReasonName);

TEST_F(RetryingClientTest, ShutdownIsAnsweredRetryLaterWithoutRetrying) {
  Send();
  ASSERT_TRUE(http_->Fail(FailureReason::kShutdown, absl::UnavailableError("pool shut down")));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::RETRY_LATER);
  EXPECT_EQ(result.reason(), "pool shut down");
  EXPECT_EQ(scheduler_.pending(), 0u) << "a retry into a client that is shutting down";
}

TEST_F(RetryingClientTest, DestroyedClientAnswersThePushesInFlight) {
  Send();
  client_.reset();
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::RETRY_LATER);
  EXPECT_EQ(result.request_id(), "req-1");
  EXPECT_EQ(scheduler_.pending(), 0u);
}

TEST_F(RetryingClientTest, MessageSayingDeliveredDoesNotStopARetry) {
  Send();
  ASSERT_TRUE(http_->Fail(FailureReason::kNotSent,
                          absl::InternalError("not sent, so it cannot have been delivered")));
  EXPECT_FALSE(result_.has_value());
  EXPECT_EQ(scheduler_.pending(), 1u);
}

TEST_F(RetryingClientTest, FullQueueAndDeadlinesAnswerTheirStatus) {
  const std::pair<FailureReason, absl::Status> cases[] = {
      {FailureReason::kQueueFull, absl::ResourceExhaustedError("queue full (5 requests)")},
      {FailureReason::kDeadlineBeforeSent, absl::DeadlineExceededError("before sending")},
      {FailureReason::kDeadlineAfterSent, absl::DeadlineExceededError("waiting for the response")},
  };
  for (const auto& [reason, status] : cases) {
    SCOPED_TRACE(http2::FailureReasonName(reason));
    result_.reset();
    Send();
    ASSERT_TRUE(http_->Fail(reason, status));
    ASSERT_TRUE(result_.has_value());
    EXPECT_EQ(result_->status(), status);
    EXPECT_EQ(scheduler_.pending(), 0u);
  }
}

TEST_F(RetryingClientTest, ServerErrorsAreRetriedWithExponentialBackoff) {
  Send();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(http_->Respond(503, R"({"reason":"ServiceUnavailable"})"));
    ASSERT_TRUE(scheduler_.RunNext()) << "no retry after attempt " << i + 1;
  }
  EXPECT_THAT(
      scheduler_.requested_delays(),
      ElementsAre(absl::Milliseconds(100), absl::Milliseconds(200), absl::Milliseconds(400)));
  ASSERT_TRUE(http_->Respond(200));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::ACCEPTED);
  EXPECT_EQ(result.attempts(), 4);
  EXPECT_EQ(http_->submitted().size(), 4u);
}

TEST_F(RetryingClientTest, TooManyRequestsWaitsForRetryAfter) {
  Send();
  ASSERT_TRUE(http_->Respond(429, R"({"reason":"TooManyRequests"})", {{"retry-after", "3"}}));
  EXPECT_THAT(scheduler_.requested_delays(), ElementsAre(absl::Seconds(3)));
  ASSERT_TRUE(scheduler_.RunNext());
  EXPECT_EQ(http_->pending(), 1u);
}

TEST_F(RetryingClientTest, GivesUpWhenTheNextRetryWouldPassTheDeadline) {
  Send(absl::Milliseconds(250));
  ASSERT_TRUE(http_->Respond(503));
  ASSERT_TRUE(scheduler_.RunNext());  // +100 ms: 150 ms left, the next delay is 200 ms
  ASSERT_TRUE(http_->Respond(503));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::RETRY_LATER);
  EXPECT_EQ(result.provider_status(), 503);
  EXPECT_EQ(result.attempts(), 2);
  EXPECT_EQ(scheduler_.pending(), 0u);
}

TEST_F(RetryingClientTest, RetryDueAfterTheDeadlineIsNotSent) {
  Send(absl::Seconds(10));
  ASSERT_TRUE(http_->Respond(503));
  clock_.Advance(absl::Seconds(20));  // the scheduler ran late
  ASSERT_TRUE(scheduler_.RunNext());
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(result_->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(result_->status().message()), HasSubstr("after 1 attempt(s)"));
  EXPECT_EQ(http_->submitted().size(), 1u);
}

TEST_F(RetryingClientTest, GivesUpAfterMaxAttempts) {
  Send();
  for (int i = 0; i < policy_.max_attempts - 1; ++i) {
    ASSERT_TRUE(http_->Respond(500));
    ASSERT_TRUE(scheduler_.RunNext());
  }
  ASSERT_TRUE(http_->Respond(500));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::RETRY_LATER);
  EXPECT_EQ(result.attempts(), policy_.max_attempts);
  EXPECT_EQ(scheduler_.pending(), 0u);
}

TEST_F(RetryingClientTest, ClientErrorsAreNotRetried) {
  Send();
  ASSERT_TRUE(http_->Respond(400, R"({"reason":"BadDeviceToken"})"));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::TOKEN_INVALID);
  EXPECT_EQ(result.reason(), "BadDeviceToken");
  EXPECT_EQ(scheduler_.pending(), 0u);
  EXPECT_EQ(http_->submitted().size(), 1u);
}

TEST_F(RetryingClientTest, RefusedTokenIsRefreshedOnceAndSentAgainAtOnce) {
  backend_->refresh_on_auth_rejected = true;
  Send();
  ASSERT_TRUE(http_->Respond(403, R"({"reason":"ExpiredProviderToken"})"));
  ASSERT_EQ(http_->pending(), 1u) << "not sent again at once";
  EXPECT_EQ(scheduler_.pending(), 0u);
  EXPECT_EQ(http_->submitted()[1].headers[0].second, "bearer token-2") << "not prepared again";
  ASSERT_TRUE(http_->Respond(403, R"({"reason":"ExpiredProviderToken"})"));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::AUTH_FAILED);
  EXPECT_EQ(result.attempts(), 2);
  EXPECT_THAT(backend_->auth_rejections, ElementsAre("ExpiredProviderToken"));
}

TEST_F(RetryingClientTest, RefusedCredentialWithoutRefreshFailsAtOnce) {
  Send();
  ASSERT_TRUE(http_->Respond(403, R"({"reason":"InvalidProviderToken"})"));
  v1::PushResult result = Verdict();
  EXPECT_EQ(result.outcome(), v1::AUTH_FAILED);
  EXPECT_EQ(result.attempts(), 1);
  EXPECT_EQ(http_->submitted().size(), 1u);
}

TEST_F(RetryingClientTest, PrepareErrors) {
  backend_->prepare_errors = {absl::InvalidArgumentError("payload 5000 bytes")};
  Send();
  EXPECT_EQ(Verdict().outcome(), v1::REJECTED);
  EXPECT_THAT(http_->submitted(), IsEmpty());

  result_.reset();
  backend_->prepare_errors = {absl::UnauthenticatedError("no key")};
  Send();
  EXPECT_EQ(Verdict().outcome(), v1::AUTH_FAILED);

  // A credential service that cannot be reached: worth retrying.
  result_.reset();
  backend_->prepare_errors = {absl::UnavailableError("token endpoint down")};
  Send();
  EXPECT_FALSE(result_.has_value());
  ASSERT_TRUE(scheduler_.RunNext());
  ASSERT_TRUE(http_->Respond(200));
  EXPECT_EQ(Verdict().outcome(), v1::ACCEPTED);
}

TEST_F(RetryingClientTest, DrainReturnsWhenThePushInFlightIsAnswered) {
  Send();
  std::thread answer([this] { http_->Respond(200); });
  const absl::Time start = absl::Now();
  client_->Drain(absl::Seconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "Drain missed the answer";
  answer.join();
  EXPECT_EQ(Verdict().outcome(), v1::ACCEPTED);
  EXPECT_EQ(http_->drains(), 1);
}

TEST_F(RetryingClientTest, DrainGivesUpAfterItsTimeout) {
  Send();
  const absl::Time start = absl::Now();
  client_->Drain(absl::Milliseconds(20));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  EXPECT_FALSE(result_.has_value());
  ASSERT_TRUE(http_->Respond(200));  // answered before the client goes
}

}  // namespace
}  // namespace pushgate::pusher
