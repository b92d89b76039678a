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

TEST(Redact, UriPushTokensAreRedactedEverywhere) {
  const std::string token = "3f9a1c7be2d04a55aa0000111122223333444455556666777788889999aaaabb";
  EXPECT_EQ(RedactUri("sip:alice@192.0.2.1:5062;transport=tcp;pn-provider=apns;pn-prid=" + token +
                      ";pn-param=ABCD123456.org.example.phone.voip"),
            "sip:alice@192.0.2.1:5062;transport=tcp;pn-provider=apns;pn-prid=3f9a1c…(64)"
            ";pn-param=ABCD123456.org.example.phone.voip");
  // A Contact header value: both URIs, any case, the legacy parameter, the value up to '>'.
  const std::string contact =
      "<sip:a@h;PN-PRID=" + token + ">;expires=60, <sip:b@h;pn-tok=" + token + ":remote>";
  const std::string redacted = RedactUri(contact);
  EXPECT_EQ(redacted.find(token.substr(6)), std::string::npos) << redacted;
  EXPECT_EQ(redacted, "<sip:a@h;PN-PRID=3f9a1c…(64)>;expires=60, <sip:b@h;pn-tok=3f9a1c…(71)>");
  // Nothing else changes; a parameter that only ends like one is not a token.
  EXPECT_EQ(RedactUri("sip:bob@example.org;x-pn-prid=1;user=phone"),
            "sip:bob@example.org;x-pn-prid=1;user=phone");
  EXPECT_EQ(RedactUri("sip:bob@example.org;pn-prid="), "sip:bob@example.org;pn-prid=<redacted:0>");
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
