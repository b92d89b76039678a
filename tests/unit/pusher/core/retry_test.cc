#include "pusher/core/retry.h"

#include <gtest/gtest.h>

namespace pushgate::pusher {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
const absl::Time kFar = kNow + absl::Hours(1);

TEST(RetryPolicy, ExponentialWithoutJitterAtMidpoint) {
  RetryPolicy p;
  EXPECT_EQ(*p.NextDelay(1, std::nullopt, kNow, kFar, 0.5), absl::Milliseconds(100));
  EXPECT_EQ(*p.NextDelay(2, std::nullopt, kNow, kFar, 0.5), absl::Milliseconds(200));
  EXPECT_EQ(*p.NextDelay(3, std::nullopt, kNow, kFar, 0.5), absl::Milliseconds(400));
  EXPECT_EQ(*p.NextDelay(4, std::nullopt, kNow, kFar, 0.5), absl::Milliseconds(800));
}

TEST(RetryPolicy, JitterBounds) {
  RetryPolicy p;
  EXPECT_EQ(*p.NextDelay(1, std::nullopt, kNow, kFar, 0.0), absl::Milliseconds(80));
  absl::Duration hi = *p.NextDelay(1, std::nullopt, kNow, kFar, 0.999999);
  EXPECT_GT(hi, absl::Milliseconds(119));
  EXPECT_LE(hi, absl::Milliseconds(120));
  EXPECT_EQ(*p.NextDelay(1, std::nullopt, kNow, kFar, 0.25), absl::Milliseconds(90));
}

TEST(RetryPolicy, CappedAtMax) {
  RetryPolicy p;
  p.max_attempts = 100;
  EXPECT_EQ(*p.NextDelay(20, std::nullopt, kNow, kFar, 0.5), absl::Seconds(30));
  absl::Duration with_jitter = *p.NextDelay(20, std::nullopt, kNow, kFar, 0.0);
  EXPECT_EQ(with_jitter, absl::Seconds(24));
}

TEST(RetryPolicy, RetryAfterIsAFloor) {
  RetryPolicy p;
  EXPECT_EQ(*p.NextDelay(1, absl::Seconds(5), kNow, kFar, 0.5), absl::Seconds(5));
  // A Retry-After shorter than the backoff does not shorten it.
  EXPECT_EQ(*p.NextDelay(3, absl::Milliseconds(10), kNow, kFar, 0.5), absl::Milliseconds(400));
  // Retry-After beyond max still honoured.
  EXPECT_EQ(*p.NextDelay(1, absl::Seconds(120), kNow, kFar, 0.5), absl::Seconds(120));
}

TEST(RetryPolicy, GivesUpWhenAttemptsExhausted) {
  RetryPolicy p;  // 5 attempts
  EXPECT_TRUE(p.NextDelay(4, std::nullopt, kNow, kFar, 0.5).has_value());
  EXPECT_FALSE(p.NextDelay(5, std::nullopt, kNow, kFar, 0.5).has_value());
  p.max_attempts = 1;
  EXPECT_FALSE(p.NextDelay(1, std::nullopt, kNow, kFar, 0.5).has_value());
}

TEST(RetryPolicy, GivesUpWhenDeadlineTooClose) {
  RetryPolicy p;
  // 100 ms delay + 10 ms minimum attempt: needs 110 ms.
  EXPECT_TRUE(p.NextDelay(1, std::nullopt, kNow, kNow + absl::Milliseconds(110), 0.5));
  EXPECT_FALSE(p.NextDelay(1, std::nullopt, kNow, kNow + absl::Milliseconds(109), 0.5));
  EXPECT_FALSE(p.NextDelay(1, absl::Seconds(2), kNow, kNow + absl::Seconds(1), 0.5));
  EXPECT_TRUE(p.NextDelay(1, absl::Seconds(2), kNow, absl::InfiniteFuture(), 0.5));
}

}  // namespace
}  // namespace pushgate::pusher
