// PushHandler without gRPC or sockets: validation, routing and, above all, what happens to a
// request id seen before (in flight, completed, with another payload, after a retryable answer).
#include "pusher/service/push_handler.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_provider_client.h"

namespace pushgate::pusher {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr char kTeam[] = "TEAM123456";
constexpr absl::Duration kWindow = absl::Minutes(5);
// APNs request ids are UUIDs (sent as apns-id).
constexpr char kId[] = "0f9c3b2a-1111-4aaa-8bbb-123456789abc";

v1::PushRequest Push(const std::string& request_id, const std::string& call_id = "call-1") {
  v1::PushRequest r;
  r.set_request_id(request_id);
  r.mutable_destination()->set_provider(v1::APNS);
  r.mutable_destination()->set_app(absl::StrCat(kTeam, ".com.example.phone.voip"));
  r.mutable_destination()->set_device_token(std::string(64, 'a'));
  r.set_kind(v1::VOIP);
  r.set_call_id(call_id);
  r.set_caller_uri("sip:bob@example.org");
  r.set_badge(-1);
  return r;
}

// Collects the answers of one Handle call.
struct Answers {
  std::vector<absl::StatusOr<v1::PushResult>> got;
  ResultCallback Callback() {
    return [this](absl::StatusOr<v1::PushResult> r) { got.push_back(std::move(r)); };
  }
  // The single answer, as a verdict.
  v1::PushResult Verdict() const {
    EXPECT_EQ(got.size(), 1u);
    if (got.size() != 1) return {};
    EXPECT_TRUE(got[0].ok()) << got[0].status();
    return got[0].ok() ? *got[0] : v1::PushResult();
  }
};

class PushHandlerTest : public ::testing::Test {
 protected:
  PushHandlerTest()
      : provider_(std::make_shared<FakeProviderClient>()),
        idempotency_(kWindow, 1000),
        handler_(router_, idempotency_, clock_) {
    router_.AddApnsTeam(v1::APNS, kTeam, provider_);
  }

  void Handle(v1::PushRequest request, Answers& answers, bool errors_as_results = false) {
    handler_.Handle(std::move(request), /*client=*/nullptr, clock_.Now() + absl::Seconds(10),
                    answers.Callback(), errors_as_results);
  }

  FakeClock clock_;
  std::shared_ptr<FakeProviderClient> provider_;
  Router router_;
  IdempotencyCache idempotency_;
  PushHandler handler_;
};

TEST_F(PushHandlerTest, APushIsSentAndItsVerdictAnswered) {
  Answers a;
  Handle(Push(kId), a);
  ASSERT_EQ(provider_->sent().size(), 1u);
  EXPECT_EQ(provider_->sent()[0].request_id(), kId);
  EXPECT_TRUE(a.got.empty()) << "answered before the provider";
  ASSERT_TRUE(provider_->Answer(v1::ACCEPTED));
  EXPECT_EQ(a.Verdict().outcome(), v1::ACCEPTED);
  EXPECT_EQ(a.Verdict().request_id(), kId);
}

TEST_F(PushHandlerTest, SameIdWhileInFlightWaitsForTheFirstVerdict) {
  Answers first, second, third;
  Handle(Push(kId), first);
  Handle(Push(kId), second);
  Handle(Push(kId), third);
  EXPECT_EQ(provider_->sent().size(), 1u) << "a duplicate in flight was pushed again";
  EXPECT_TRUE(second.got.empty()) << "a duplicate was answered before the first send";
  ASSERT_TRUE(provider_->Answer(v1::ACCEPTED));
  for (const Answers* a : {&first, &second, &third}) {
    EXPECT_EQ(a->Verdict().outcome(), v1::ACCEPTED);
    EXPECT_EQ(a->Verdict().request_id(), kId);
  }
}

TEST_F(PushHandlerTest, SameIdAfterTheVerdictAnswersItWithoutPushing) {
  Answers first, again;
  Handle(Push(kId), first);
  ASSERT_TRUE(provider_->Answer(v1::TOKEN_INVALID, "Unregistered"));
  clock_.Advance(kWindow - absl::Seconds(1));
  Handle(Push(kId), again);
  EXPECT_EQ(provider_->sent().size(), 1u);
  EXPECT_EQ(again.Verdict().outcome(), v1::TOKEN_INVALID);
  EXPECT_EQ(again.Verdict().reason(), "Unregistered");
}

TEST_F(PushHandlerTest, SameIdWithAnotherPayloadGetsTheFirstVerdict) {
  // The id names the push: a different payload under the same id is the same push.
  Answers first, in_flight, after;
  Handle(Push(kId, "call-1"), first);
  Handle(Push(kId, "call-2"), in_flight);
  ASSERT_TRUE(provider_->Answer(v1::ACCEPTED));
  Handle(Push(kId, "call-3"), after);
  ASSERT_EQ(provider_->sent().size(), 1u);
  EXPECT_EQ(provider_->sent()[0].call_id(), "call-1");
  EXPECT_EQ(in_flight.Verdict().outcome(), v1::ACCEPTED);
  EXPECT_EQ(after.Verdict().outcome(), v1::ACCEPTED);
}

TEST_F(PushHandlerTest, SameIdAfterTheWindowIsPushedAgain) {
  Answers first, later;
  Handle(Push(kId), first);
  ASSERT_TRUE(provider_->Answer(v1::ACCEPTED));
  clock_.Advance(kWindow + absl::Seconds(1));
  Handle(Push(kId), later);
  EXPECT_EQ(provider_->sent().size(), 2u);
}

TEST_F(PushHandlerTest, RetryLaterIsNotRememberedSoTheSameIdPushesAgain) {
  Answers first, duplicate, retry;
  Handle(Push(kId), first);
  Handle(Push(kId), duplicate);
  ASSERT_TRUE(provider_->Answer(v1::RETRY_LATER, "connection lost; may have been delivered"));
  EXPECT_EQ(first.Verdict().outcome(), v1::RETRY_LATER);
  EXPECT_EQ(duplicate.Verdict().outcome(), v1::RETRY_LATER) << "the waiting duplicate";
  Handle(Push(kId), retry);
  EXPECT_EQ(provider_->sent().size(), 2u) << "a retry after RETRY_LATER must push";
}

TEST_F(PushHandlerTest, RequestErrorIsNotRememberedAndReachesWaitingDuplicates) {
  Answers first, duplicate, stream_duplicate, retry;
  Handle(Push(kId), first);
  Handle(Push(kId), duplicate);
  Handle(Push(kId), stream_duplicate, /*errors_as_results=*/true);
  ASSERT_TRUE(
      provider_->Answer(absl::DeadlineExceededError("deadline exceeded after 2 attempt(s)")));
  ASSERT_EQ(first.got.size(), 1u);
  EXPECT_EQ(first.got[0].status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_EQ(duplicate.got.size(), 1u);
  EXPECT_EQ(duplicate.got[0].status().code(), absl::StatusCode::kDeadlineExceeded);
  // A stream carries the error as a result, with the id its client sent.
  v1::PushResult streamed = stream_duplicate.Verdict();
  EXPECT_EQ(streamed.outcome(), v1::RETRY_LATER);
  EXPECT_EQ(streamed.request_id(), kId);
  EXPECT_THAT(streamed.reason(), HasSubstr("DEADLINE_EXCEEDED"));
  Handle(Push(kId), retry);
  EXPECT_EQ(provider_->sent().size(), 2u);
}

TEST_F(PushHandlerTest, RequestsWithoutIdAreNeverDeduplicated) {
  Answers a, b;
  Handle(Push(""), a);
  Handle(Push(""), b);
  ASSERT_EQ(provider_->sent().size(), 2u);
  const std::string id_a = provider_->sent()[0].request_id();
  const std::string id_b = provider_->sent()[1].request_id();
  // A random UUID (usable as apns-id), one per request.
  EXPECT_THAT(id_a,
              MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_NE(id_a, id_b);
  ASSERT_TRUE(provider_->Answer(v1::ACCEPTED));
  ASSERT_TRUE(provider_->Answer(v1::ACCEPTED));
  EXPECT_EQ(a.Verdict().request_id(), id_a);
}

TEST_F(PushHandlerTest, InvalidRequestIsRefusedWithoutSendingOrRemembering) {
  v1::PushRequest bad = Push(kId);
  bad.mutable_destination()->set_device_token("not-hex");
  Answers refused, streamed, valid;
  Handle(bad, refused);
  ASSERT_EQ(refused.got.size(), 1u);
  EXPECT_EQ(refused.got[0].status().code(), absl::StatusCode::kInvalidArgument);
  Handle(bad, streamed, /*errors_as_results=*/true);
  EXPECT_EQ(streamed.Verdict().outcome(), v1::REJECTED);
  EXPECT_EQ(streamed.Verdict().request_id(), kId);
  EXPECT_TRUE(provider_->sent().empty());
  Handle(Push(kId), valid);  // the id was not taken by the refused request
  EXPECT_EQ(provider_->sent().size(), 1u);
}

// No credentials is the pusher's verdict, not a failed call: a NO_CREDENTIALS result for both
// methods (it used to be FAILED_PRECONDITION for Send and a result for SendStream).
TEST_F(PushHandlerTest, AppWithoutCredentialsIsANoCredentialsResultForBothMethods) {
  v1::PushRequest other = Push(kId);
  other.mutable_destination()->set_app("OTHERTEAM1.com.example.phone.voip");
  Answers a, streamed;
  Handle(other, a);
  ASSERT_EQ(a.got.size(), 1u);
  ASSERT_TRUE(a.got[0].ok()) << a.got[0].status();
  EXPECT_EQ(a.got[0]->outcome(), v1::NO_CREDENTIALS);
  EXPECT_EQ(a.got[0]->request_id(), kId);
  EXPECT_TRUE(absl::StartsWith(a.got[0]->reason(), "FAILED_PRECONDITION: no credentials"))
      << a.got[0]->reason();
  other.clear_request_id();
  Handle(other, streamed, /*errors_as_results=*/true);
  EXPECT_EQ(streamed.Verdict().outcome(), v1::NO_CREDENTIALS);
  EXPECT_EQ(streamed.Verdict().request_id(), "") << "the client sent no id";
  EXPECT_TRUE(provider_->sent().empty());
}

}  // namespace
}  // namespace pushgate::pusher
