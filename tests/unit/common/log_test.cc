#include "common/log.h"

#include <gtest/gtest.h>

namespace pushgate::log {
namespace {

TEST(Redact, TokenKeepsPrefixAndLengthOnly) {
  std::string token = "3f9a1c7be2d04a55aa0000111122223333444455556666777788889999aaaabb";
  std::string r = RedactToken(token);
  EXPECT_EQ(r, "3f9a1c…(64)");
  EXPECT_EQ(r.find(token.substr(6)), std::string::npos);
}

TEST(Redact, ShortTokenFullyHidden) {
  EXPECT_EQ(RedactToken("abcdefgh"), "<redacted:8>");
  EXPECT_EQ(RedactToken(""), "<redacted:0>");
}

TEST(Redact, SecretShowsNothingButLength) {
  EXPECT_EQ(RedactSecret("-----BEGIN PRIVATE KEY-----abc"), "<redacted:30>");
}

TEST(JsonEscapeTest, EscapesQuotesControlAndBackslash) {
  EXPECT_EQ(JsonEscape("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
}

TEST(LogInit, RejectsUnknownFormatAndLevel) {
  EXPECT_EQ(Init({.format = "xml"}).message(), "unknown log format 'xml' (text or json)");
  auto s = Init({.format = "text", .level = "loud"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("unknown log level 'loud'"), std::string::npos);
  EXPECT_FALSE(Init({.components = "proxy"}).ok());
}

TEST(LogInit, ComponentLevelsUseLongestPrefix) {
  ASSERT_TRUE(Init({.level = "warn", .components = "pusher=debug,pusher.http2=trace"}).ok());
  EXPECT_EQ(Get("pusher.apns")->level(), spdlog::level::debug);
  EXPECT_EQ(Get("pusher.http2")->level(), spdlog::level::trace);
  EXPECT_EQ(Get("pusherx")->level(), spdlog::level::warn);
  EXPECT_EQ(Get("proxy")->level(), spdlog::level::warn);
  ASSERT_TRUE(Init({}).ok());
  EXPECT_EQ(Get("pusher.apns")->level(), spdlog::level::info);
}

}  // namespace
}  // namespace pushgate::log
