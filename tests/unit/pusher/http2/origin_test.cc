#include "pusher/http2/origin.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pusher/http2/backoff.h"
#include "pusher/http2/client.h"

namespace pushgate::http2 {
namespace {

using ::testing::HasSubstr;

TEST(ParseBaseUrl, HostAndPort) {
  absl::StatusOr<Origin> o = ParseBaseUrl("https://api.sandbox.push.apple.com:2197");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "api.sandbox.push.apple.com");
  EXPECT_EQ(o->port, 2197);
  EXPECT_EQ(o->authority, "api.sandbox.push.apple.com:2197");
  EXPECT_FALSE(o->host_is_ip);
}

TEST(ParseBaseUrl, DefaultPortIsOmittedFromAuthority) {
  absl::StatusOr<Origin> o = ParseBaseUrl("https://FCM.googleapis.com/");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "fcm.googleapis.com");
  EXPECT_EQ(o->port, 443);
  EXPECT_EQ(o->authority, "fcm.googleapis.com");
}

TEST(ParseBaseUrl, IpLiterals) {
  absl::StatusOr<Origin> v4 = ParseBaseUrl("https://127.0.0.1:8443");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->host_is_ip);
  EXPECT_EQ(v4->authority, "127.0.0.1:8443");
  absl::StatusOr<Origin> v6 = ParseBaseUrl("https://[::1]:8443");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->host_is_ip);
  EXPECT_EQ(v6->authority, "[::1]:8443");
}

TEST(ParseBaseUrl, RejectsWithReason) {
  struct Case {
    const char* url;
    const char* why;
  } cases[] = {
      {"http://example.com", "https://"},
      {"https://", "empty host"},
      {"https://example.com:0", "1..65535"},
      {"https://example.com:70000", "1..65535"},
      {"https://example.com:x", "1..65535"},
      {"https://example.com:", "empty port"},
      {"https://example.com/3/device", "without path"},
      {"https://user@example.com", "without path"},
      {"https://[::1", "unterminated"},
      {"https://[zz]:1", "invalid IPv6"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Origin> o = ParseBaseUrl(c.url);
    ASSERT_FALSE(o.ok()) << c.url;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(c.why)) << c.url;
  }
}

TEST(ResponseHeader, CaseInsensitiveFirstMatch) {
  Response r;
  r.headers = {{"apns-id", "a"}, {"apns-id", "b"}};
  EXPECT_EQ(r.Header("APNS-ID"), "a");
  EXPECT_EQ(r.Header("missing"), "");
}

}  // namespace
}  // namespace pushgate::http2

namespace pushgate::http2 {
namespace {

TEST(ReconnectDelay, DoublesFromInitialUpToMax) {
  const absl::Duration initial = absl::Milliseconds(100), max = absl::Seconds(30);
  EXPECT_EQ(ReconnectDelay(initial, max, 1, 1.0), absl::Milliseconds(100));
  EXPECT_EQ(ReconnectDelay(initial, max, 2, 1.0), absl::Milliseconds(200));
  EXPECT_EQ(ReconnectDelay(initial, max, 5, 1.0), absl::Milliseconds(1600));
  EXPECT_EQ(ReconnectDelay(initial, max, 9, 1.0), absl::Milliseconds(25600));
  EXPECT_EQ(ReconnectDelay(initial, max, 10, 1.0), absl::Seconds(30));
  EXPECT_EQ(ReconnectDelay(initial, max, 1000, 1.0), absl::Seconds(30));
}

TEST(ReconnectDelay, JitterShortensByAtMostTwentyPercent) {
  const absl::Duration initial = absl::Milliseconds(100), max = absl::Seconds(30);
  EXPECT_EQ(ReconnectDelay(initial, max, 1, 0.0), absl::Milliseconds(80));
  EXPECT_EQ(ReconnectDelay(initial, max, 1, 0.5), absl::Milliseconds(90));
  EXPECT_EQ(ReconnectDelay(initial, max, 10, 0.0), absl::Seconds(24));
  EXPECT_EQ(ReconnectDelay(initial, max, 1, 7.0), absl::Milliseconds(100));  // clamped
}

}  // namespace
}  // namespace pushgate::http2
