#include "pusher/http2/client.h"

#include <sstream>

#include "gtest/gtest.h"

namespace pushgate::http2 {
namespace {

TEST(FailureReason, OnlyFailuresAfterSendingMayHaveBeenDelivered) {
  struct Case {
    FailureReason reason;
    bool may_have_been_delivered;
  };
  const Case cases[] = {
      {FailureReason::kQueueFull, false},        {FailureReason::kShutdown, false},
      {FailureReason::kInvalidRequest, false},   {FailureReason::kTlsFailure, false},
      {FailureReason::kNotSent, false},          {FailureReason::kDeadlineBeforeSent, false},
      {FailureReason::kDeadlineAfterSent, true}, {FailureReason::kConnectionLost, true},
      {FailureReason::kStreamReset, true},       {FailureReason::kResponseTooLarge, true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(MayHaveBeenDelivered(c.reason), c.may_have_been_delivered) << c.reason;
    EXPECT_NE(FailureReasonName(c.reason), "unknown");
  }
  EXPECT_TRUE(MayHaveBeenDelivered(static_cast<FailureReason>(200))) << "unknown: assume sent";
}

TEST(Result, HoldsAResponseOrAFailure) {
  Response response;
  response.status = 410;
  Result ok(std::move(response));
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 410);
  EXPECT_TRUE(ok.status().ok());

  Result failed(FailureReason::kConnectionLost, absl::UnavailableError("connection lost"));
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.reason(), FailureReason::kConnectionLost);
  EXPECT_EQ(failed.status(), absl::UnavailableError("connection lost"));
  std::ostringstream shown;
  shown << failed;
  EXPECT_EQ(shown.str(), "connection_lost: UNAVAILABLE: connection lost");
}

}  // namespace
}  // namespace pushgate::http2
