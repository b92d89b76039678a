#include "proxy/core/outcomes.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr Outcome kLast = Outcome::kMergedRequest;

TEST(OutcomesTest, EveryOutcomeHasAnErrorCodeReasonAndLabelButPushSent) {
  for (int i = 0; i <= static_cast<int>(kLast); ++i) {
    const Outcome outcome = static_cast<Outcome>(i);
    const OutcomeInfo& info = Describe(outcome);
    // One provisional answer (110 Push sent); every other one is an error.
    const int low = outcome == Outcome::kPushSent ? 100 : 400;
    EXPECT_GE(info.status, low) << i;
    EXPECT_LT(info.status, outcome == Outcome::kPushSent ? 200 : 600) << i;
    EXPECT_FALSE(info.reason.empty()) << i;
    EXPECT_FALSE(info.label.empty()) << i;
  }
}

struct Case {
  Outcome outcome;
  int status;
  const char* retry_after;  // "" when none
  const char* label;        // the metric labels dashboards already use
};

class OutcomeTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(OutcomeTableTest, AnswerAndLabel) {
  const Case& c = GetParam();
  RetryAfterConfig retry;
  retry.busy = absl::Seconds(5);
  retry.store = absl::Seconds(7);
  retry.conflict = absl::Seconds(1);
  SipAnswer answer = AnswerFor(c.outcome, retry);
  EXPECT_EQ(answer.status, c.status);
  EXPECT_EQ(LabelOf(c.outcome), c.label);
  if (std::string(c.retry_after).empty()) {
    EXPECT_THAT(answer.headers, IsEmpty());
  } else {
    EXPECT_THAT(answer.headers, ElementsAre(Pair("Retry-After", c.retry_after)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, OutcomeTableTest,
    ::testing::Values(Case{Outcome::kDraining, 503, "5", "draining"},
                      Case{Outcome::kTooManyPending, 503, "5", "too_many_pending"},
                      Case{Outcome::kRegistrarUnreachable, 503, "5", "forward_failed"},
                      Case{Outcome::kBackendUnreachable, 503, "5", "backend_unreachable"},
                      Case{Outcome::kStoreUnavailable, 503, "7", "store_error"},
                      Case{Outcome::kStoreConflict, 503, "1", "store_conflict"},
                      Case{Outcome::kNoTransport, 503, "", "no_transport"},
                      Case{Outcome::kShuttingDown, 503, "", "shutting_down"},
                      Case{Outcome::kBackendNoAnswer, 503, "", "backend_unreachable"},
                      Case{Outcome::kBackendTimeout, 408, "", "backend_timeout"},
                      Case{Outcome::kTooManyHops, 483, "", "too_many_hops"},
                      Case{Outcome::kNoTransaction, 481, "", "no_transaction"},
                      Case{Outcome::kIntervalTooBrief, 423, "", "interval_too_brief"},
                      Case{Outcome::kContactRules, 400, "", "rejected"},
                      Case{Outcome::kTooManyContacts, 403, "", "rejected"},
                      Case{Outcome::kDomainNotServed, 403, "", "domain_refused"},
                      Case{Outcome::kRelayDenied, 403, "", "relay_denied"},
                      Case{Outcome::kBadMasquerade, 403, "", "bad_masquerade"},
                      Case{Outcome::kNotRouted, 480, "", "not_routed"},
                      Case{Outcome::kBackendUnknownTarget, 404, "", "backend_unknown_target"},
                      Case{Outcome::kBadRequest, 400, "", "bad_request"},
                      Case{Outcome::kInternalError, 500, "", "internal_error"},
                      Case{Outcome::kNoBinding, 404, "", "no_binding"},
                      Case{Outcome::kCallTimeout, 408, "", "call_timeout"},
                      Case{Outcome::kCallUnavailable, 480, "", "call_unavailable"},
                      Case{Outcome::kCallTerminated, 487, "", "call_terminated"},
                      Case{Outcome::kDeviceError, 500, "", "device_error"},
                      Case{Outcome::kBranchNoAnswer, 500, "", "branch_no_answer"},
                      Case{Outcome::kNextHopUnreachable, 503, "", "next_hop_unreachable"},
                      Case{Outcome::kPushSent, 110, "", "push_sent"},
                      Case{Outcome::kNextHopNoAnswer, 503, "", "next_hop_no_answer"},
                      Case{Outcome::kInvalidMessage, 400, "", "invalid_message"},

                      Case{Outcome::kRelayTimerC, 408, "", "timer_c"},
                      Case{Outcome::kRateLimited, 503, "5", "rate_limited"},
                      Case{Outcome::kPushFailed, 480, "", "push_failed"},
                      Case{Outcome::kMergedRequest, 482, "", "merged_request"}));

// The reason phrases the caller of a call sees (the fork's answers and nta's own ones).
TEST(OutcomesTest, CallAnswersKeepTheirReasonPhrases) {
  EXPECT_EQ(Describe(Outcome::kNoBinding).reason, "Not Found");
  EXPECT_EQ(Describe(Outcome::kCallTimeout).reason, "Request Timeout");
  EXPECT_EQ(Describe(Outcome::kCallUnavailable).reason, "Temporarily Unavailable");
  EXPECT_EQ(Describe(Outcome::kCallTerminated).reason, "Request Terminated");
  EXPECT_EQ(Describe(Outcome::kDeviceError).reason, "Service Unavailable at the device");
  EXPECT_EQ(Describe(Outcome::kPushSent).reason, "Push sent");
  EXPECT_EQ(Describe(Outcome::kBranchNoAnswer).reason, "No answer");
  EXPECT_EQ(Describe(Outcome::kNextHopNoAnswer).reason, "Unreachable");
  EXPECT_EQ(Describe(Outcome::kBackendTimeout).reason, "Request Timeout");
}

TEST(OutcomesTest, StoreRetryAfterIsTheLaterOfConfiguredAndTheStoresHint) {
  RetryAfterConfig retry;
  retry.store = absl::Seconds(5);
  EXPECT_THAT(AnswerFor(Outcome::kStoreUnavailable, retry).headers,
              ElementsAre(Pair("Retry-After", "5")));
  retry.store_hint = [] { return absl::Seconds(12); };
  EXPECT_THAT(AnswerFor(Outcome::kStoreUnavailable, retry).headers,
              ElementsAre(Pair("Retry-After", "12")));
  retry.store_hint = [] { return absl::Seconds(1); };
  EXPECT_THAT(AnswerFor(Outcome::kStoreUnavailable, retry).headers,
              ElementsAre(Pair("Retry-After", "5")));
  // Only the store's outcomes take the hint.
  retry.store_hint = [] { return absl::Seconds(30); };
  EXPECT_THAT(AnswerFor(Outcome::kDraining, retry).headers, ElementsAre(Pair("Retry-After", "5")));
}

TEST(OutcomesTest, RetryDelayOfFollowsTheRow) {
  RetryAfterConfig retry;
  retry.store = absl::Seconds(7);
  retry.busy = absl::Seconds(3);
  EXPECT_EQ(RetryDelayOf(Outcome::kStoreUnavailable, retry), absl::Seconds(7));
  EXPECT_EQ(RetryDelayOf(Outcome::kDraining, retry), absl::Seconds(3));
  EXPECT_EQ(RetryDelayOf(Outcome::kNoBinding, retry), absl::ZeroDuration());
  // The reasons are the table's literals: sofia takes them as C strings.
  absl::string_view reason = Describe(Outcome::kNoBinding).reason;
  EXPECT_EQ(reason.data()[reason.size()], '\0');
}

TEST(OutcomesTest, ReasonOverrideAndExtraHeadersFollowRetryAfter) {
  SipAnswer a = AnswerFor(Outcome::kBadRequest, {}, "To: URI: empty host");
  EXPECT_EQ(a.reason, "To: URI: empty host");
  EXPECT_EQ(AnswerFor(Outcome::kBadRequest, {}).reason, "Bad Request");
  SipAnswer b = AnswerFor(Outcome::kIntervalTooBrief, {}, {}, {{"Min-Expires", "60"}});
  EXPECT_EQ(b.reason, "Interval Too Brief");
  EXPECT_THAT(b.headers, ElementsAre(Pair("Min-Expires", "60")));
  RetryAfterConfig retry;
  retry.busy = absl::Seconds(9);
  SipAnswer c = AnswerFor(Outcome::kDraining, retry, {}, {{"Warning", "x"}});
  EXPECT_THAT(c.headers, ElementsAre(Pair("Retry-After", "9"), Pair("Warning", "x")));
}

}  // namespace
}  // namespace pushgate::proxy
