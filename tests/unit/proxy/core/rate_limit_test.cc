#include "proxy/core/rate_limit.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace pushgate::proxy {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST(RateLimiterTest, PikeDefaultsThirtyPerTwoSecondsThenBlockedForTwoMinutes) {
  RateLimiter limiter(RateLimitPolicy{});
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(limiter.Check("192.0.2.1", kT0 + absl::Milliseconds(i)), RateVerdict::kAllowed) << i;
  }
  EXPECT_EQ(limiter.Check("192.0.2.1", kT0 + absl::Milliseconds(40)), RateVerdict::kBlocked);
  EXPECT_EQ(limiter.BlockedUntil("192.0.2.1"), kT0 + absl::Milliseconds(40) + absl::Seconds(120));
  // Another source is not affected.
  EXPECT_EQ(limiter.Check("192.0.2.2", kT0 + absl::Milliseconds(50)), RateVerdict::kAllowed);
  // Still blocked just before the end, even after a quiet while.
  EXPECT_EQ(limiter.Check("192.0.2.1", kT0 + absl::Seconds(120)), RateVerdict::kBlocked);
  EXPECT_EQ(limiter.Check("192.0.2.1", kT0 + absl::Seconds(121)), RateVerdict::kAllowed);
}

TEST(RateLimiterTest, TheBudgetRenewsEveryWindow) {
  RateLimiter limiter(RateLimitPolicy{.requests = 3, .window = absl::Seconds(2)});
  for (int round = 0; round < 5; ++round) {
    const absl::Time start = kT0 + round * absl::Seconds(2);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(limiter.Check("a", start + absl::Milliseconds(i)), RateVerdict::kAllowed);
    }
  }
}

TEST(RateLimiterTest, ZeroRequestsDisablesTheLimit) {
  RateLimiter limiter(RateLimitPolicy{.requests = 0});
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(limiter.Check("a", kT0), RateVerdict::kAllowed);
  EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(RateLimiterTest, TrackedSourcesAreCappedLeastRecentFirst) {
  RateLimiter limiter(RateLimitPolicy{.requests = 1, .max_sources = 3});
  EXPECT_EQ(limiter.Check("a", kT0), RateVerdict::kAllowed);
  EXPECT_EQ(limiter.Check("a", kT0), RateVerdict::kBlocked);
  EXPECT_EQ(limiter.Check("b", kT0), RateVerdict::kAllowed);
  EXPECT_EQ(limiter.Check("c", kT0), RateVerdict::kAllowed);
  EXPECT_EQ(limiter.Check("a", kT0), RateVerdict::kBlocked);  // a is the most recent now
  EXPECT_EQ(limiter.Check("d", kT0), RateVerdict::kAllowed);  // evicts b
  EXPECT_EQ(limiter.tracked(), 3u);
  EXPECT_EQ(limiter.BlockedUntil("b"), absl::InfinitePast());
  EXPECT_EQ(limiter.Check("a", kT0), RateVerdict::kBlocked);  // kept
  for (int i = 0; i < 10000; ++i) limiter.Check(absl::StrCat("s", i), kT0);
  EXPECT_EQ(limiter.tracked(), 3u);
}

}  // namespace
}  // namespace pushgate::proxy
