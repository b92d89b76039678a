#include "pusher/core/payload.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace pushgate::pusher {
namespace {

using nlohmann::json;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
const std::string kToken(64, 'a');

ApnsTopic Topic() { return ApnsTopic{"ABCD123456", "com.example.phone", true}; }

v1::PushRequest Voip() {
  v1::PushRequest r;
  r.set_request_id("123E4567-E89B-12D3-A456-426614174000");
  r.mutable_destination()->set_provider(v1::APNS);
  r.mutable_destination()->set_app("ABCD123456.com.example.phone.voip");
  r.mutable_destination()->set_device_token(kToken);
  r.set_kind(v1::VOIP);
  r.set_call_id("c-1@example.com");
  r.set_caller_uri("sip:alice@example.com");
  r.set_caller_display_name("Alice \"A\"");
  (*r.mutable_data())["extra"] = "1";
  return r;
}

std::map<std::string, std::string> Headers(const HttpRequestSpec& s) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : s.headers) m[k] = v;
  EXPECT_EQ(m.size(), s.headers.size()) << "duplicate header";
  return m;
}

TEST(BuildApnsRequest, Voip) {
  absl::StatusOr<HttpRequestSpec> s = BuildApnsRequest(Voip(), Topic(), kNow);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->method, "POST");
  EXPECT_EQ(s->path, "/3/device/" + kToken);
  auto h = Headers(*s);
  EXPECT_EQ(h["apns-push-type"], "voip");
  EXPECT_EQ(h["apns-topic"], "com.example.phone.voip");
  EXPECT_EQ(h["apns-priority"], "10");
  EXPECT_EQ(h["apns-expiration"], "0");
  EXPECT_EQ(h["apns-id"], "123e4567-e89b-12d3-a456-426614174000");
  EXPECT_EQ(h.count("apns-collapse-id"), 0u);
  EXPECT_EQ(h.count("authorization"), 0u);
  json body = json::parse(s->body);
  EXPECT_EQ(body, json::parse(R"({"aps":{},"call-id":"c-1@example.com",
      "from-uri":"sip:alice@example.com","display-name":"Alice \"A\"","extra":"1"})"));
}

TEST(BuildApnsRequest, AlertWithLocKeyBadgeSoundTtlCollapse) {
  v1::PushRequest r = Voip();
  r.set_kind(v1::ALERT);
  r.set_loc_key("IC_MSG");
  r.set_alert_title("Missed call");
  r.set_sound("ring.caf");
  r.set_badge(3);
  r.set_collapse_id("call-c-1");
  r.mutable_time_to_live()->set_seconds(30);
  absl::StatusOr<HttpRequestSpec> s = BuildApnsRequest(r, Topic(), kNow);
  ASSERT_TRUE(s.ok()) << s.status();
  auto h = Headers(*s);
  EXPECT_EQ(h["apns-push-type"], "alert");
  EXPECT_EQ(h["apns-topic"], "com.example.phone");
  EXPECT_EQ(h["apns-priority"], "10");
  EXPECT_EQ(h["apns-expiration"], "1700000030");
  EXPECT_EQ(h["apns-collapse-id"], "call-c-1");
  json aps = json::parse(s->body)["aps"];
  EXPECT_EQ(aps["alert"]["loc-key"], "IC_MSG");
  EXPECT_EQ(aps["alert"]["loc-args"], json::array({"Alice \"A\""}));
  EXPECT_EQ(aps["alert"]["title"], "Missed call");
  EXPECT_EQ(aps["sound"], "ring.caf");
  EXPECT_EQ(aps["badge"], 3);
}

TEST(BuildApnsRequest, AlertBodyAndBadgeLeftAlone) {
  v1::PushRequest r = Voip();
  r.set_kind(v1::ALERT);
  r.set_alert_body("Hello");
  r.set_badge(-1);
  r.set_priority(v1::PRIORITY_NORMAL);
  absl::StatusOr<HttpRequestSpec> s = BuildApnsRequest(r, Topic(), kNow);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Headers(*s)["apns-priority"], "5");
  json aps = json::parse(s->body)["aps"];
  EXPECT_EQ(aps["alert"], json::parse(R"({"body":"Hello"})"));
  EXPECT_FALSE(aps.contains("badge"));
  EXPECT_FALSE(aps.contains("sound"));
}

TEST(BuildApnsRequest, BackgroundIsPriorityFiveContentAvailable) {
  v1::PushRequest r = Voip();
  r.set_kind(v1::BACKGROUND);
  r.set_request_id("");
  absl::StatusOr<HttpRequestSpec> s = BuildApnsRequest(r, Topic(), kNow);
  ASSERT_TRUE(s.ok());
  auto h = Headers(*s);
  EXPECT_EQ(h["apns-push-type"], "background");
  EXPECT_EQ(h["apns-priority"], "5");
  EXPECT_EQ(h.count("apns-id"), 0u);
  EXPECT_EQ(json::parse(s->body)["aps"], json::parse(R"({"content-available":1})"));
}

TEST(BuildApnsRequest, SizeLimits) {
  // VoIP: 5120 bytes allowed.
  v1::PushRequest r = Voip();
  r.clear_data();
  std::string base = BuildApnsRequest(r, Topic(), kNow)->body;
  size_t overhead = base.size() + std::string(R"(,"k":"")").size();
  (*r.mutable_data())["k"] = std::string(5120 - overhead, 'x');
  absl::StatusOr<HttpRequestSpec> at_limit = BuildApnsRequest(r, Topic(), kNow);
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->body.size(), 5120u);
  (*r.mutable_data())["k"] += "x";
  absl::StatusOr<HttpRequestSpec> over = BuildApnsRequest(r, Topic(), kNow);
  EXPECT_TRUE(IsPayloadTooLarge(over.status()));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(over.status().message(), "payload is 5121 bytes, limit 5120");

  // Alert: 4096.
  v1::PushRequest a = Voip();
  a.set_kind(v1::ALERT);
  a.set_alert_body("hi");
  (*a.mutable_data())["extra"] = std::string(4100, 'x');
  absl::StatusOr<HttpRequestSpec> too_big = BuildApnsRequest(a, Topic(), kNow);
  EXPECT_TRUE(IsPayloadTooLarge(too_big.status()));
  EXPECT_TRUE(absl::StrContains(too_big.status().message(), "limit 4096"));
}

TEST(BuildApnsRequest, RejectsDataKindAndCollidingKeys) {
  v1::PushRequest r = Voip();
  r.set_kind(v1::DATA);
  EXPECT_EQ(BuildApnsRequest(r, Topic(), kNow).status().code(), absl::StatusCode::kInvalidArgument);
  v1::PushRequest c = Voip();
  (*c.mutable_data())["call-id"] = "other";
  absl::StatusOr<HttpRequestSpec> s = BuildApnsRequest(c, Topic(), kNow);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsPayloadTooLarge(s.status()));
}

v1::PushRequest FcmVoip() {
  v1::PushRequest r = Voip();
  r.mutable_destination()->set_provider(v1::FCM);
  r.mutable_destination()->set_app("my-project");
  r.mutable_destination()->set_device_token("fcm-token:1");
  r.mutable_time_to_live()->set_seconds(30);
  r.set_collapse_id("call");
  return r;
}

// BuildApnsRequest writes the body without a DOM; it must be byte for byte what the nlohmann
// DOM dumps (sorted keys, nlohmann's escaping), and parse back to the request's strings.
std::string RandomString(std::mt19937& rng, size_t max_len) {
  static const std::vector<std::string> kPieces = {"a",
                                                   "Z",
                                                   "0",
                                                   " ",
                                                   "/",
                                                   "\"",
                                                   "\\",
                                                   "\b",
                                                   "\f",
                                                   "\n",
                                                   "\r",
                                                   "\t",
                                                   std::string(1, '\0'),
                                                   "\x01",
                                                   "\x1f",
                                                   "\x7f",
                                                   "\xc3\xa9",
                                                   "\xe2\x82\xac",
                                                   "\xf0\x9f\x98\x80",
                                                   "aps",
                                                   "call-id",
                                                   "<",
                                                   "&",
                                                   "'",
                                                   "\xed\x9f\xbf",
                                                   "\xef\xbf\xbd"};
  std::string out;
  size_t n = std::uniform_int_distribution<size_t>(0, max_len)(rng);
  for (size_t i = 0; i < n; ++i) out += kPieces[rng() % kPieces.size()];
  return out;
}

TEST(ApnsBody, DirectWriterMatchesDomAndParsesBack) {
  std::mt19937 rng(20261127);
  const std::vector<std::string> kKeys = {"",  "A",      "aaa",      "ap",   "apt", "apsx",
                                          "b", "call-i", "call-idx", "zz",   "\"",  "\xc3\xa9",
                                          "~", "from",   "display",  "Data", "\t"};
  for (int i = 0; i < 3000; ++i) {
    v1::PushRequest r = Voip();
    const v1::PushKind kinds[] = {v1::VOIP, v1::ALERT, v1::BACKGROUND};
    r.set_kind(kinds[i % 3]);
    r.set_request_id(absl::StrCat("id-", i));
    r.set_call_id(rng() % 4 == 0 ? "" : RandomString(rng, 6));
    r.set_caller_uri(rng() % 4 == 0 ? "" : RandomString(rng, 6));
    r.set_caller_display_name(rng() % 4 == 0 ? "" : RandomString(rng, 6));
    r.set_loc_key(rng() % 2 == 0 ? "" : RandomString(rng, 4));
    r.set_alert_body(rng() % 2 == 0 ? "" : RandomString(rng, 4));
    r.set_alert_title(rng() % 2 == 0 ? "" : RandomString(rng, 4));
    r.set_sound(rng() % 2 == 0 ? "" : RandomString(rng, 3));
    r.set_badge(static_cast<int>(rng() % 5) - 2);
    r.clear_data();
    size_t entries = rng() % 5;
    for (size_t e = 0; e < entries; ++e) {
      std::string key = rng() % 3 == 0 ? RandomString(rng, 3) : kKeys[rng() % kKeys.size()];
      if (key == "aps" || key == kCallIdKey || key == kCallerUriKey || key == kCallerNameKey) {
        continue;  // collisions: tested separately
      }
      (*r.mutable_data())[key] = RandomString(rng, 5);
    }
    absl::StatusOr<HttpRequestSpec> s = BuildApnsRequest(r, Topic(), kNow);
    ASSERT_TRUE(s.ok()) << s.status();
    absl::StatusOr<std::string> dom = ApnsBodyWithDom(r);
    ASSERT_TRUE(dom.ok()) << dom.status();
    ASSERT_EQ(s->body, *dom) << "request " << i << ": " << r.ShortDebugString();
    json body = json::parse(s->body);  // throws (fails the test) on invalid JSON
    if (!r.call_id().empty()) {
      EXPECT_EQ(body[kCallIdKey], r.call_id());
    }
    if (!r.caller_uri().empty()) {
      EXPECT_EQ(body[kCallerUriKey], r.caller_uri());
    }
    if (!r.caller_display_name().empty()) {
      EXPECT_EQ(body[kCallerNameKey], r.caller_display_name());
    }
    for (const auto& [k, v] : r.data()) EXPECT_EQ(body[k], v) << "data key '" << k << "'";
    if (r.kind() == v1::ALERT) {
      if (!r.sound().empty()) {
        EXPECT_EQ(body["aps"]["sound"], r.sound());
      }
      if (r.badge() >= 0) {
        EXPECT_EQ(body["aps"]["badge"], r.badge());
      }
      if (!r.alert_title().empty()) {
        EXPECT_EQ(body["aps"]["alert"]["title"], r.alert_title());
      }
    }
  }
}

TEST(ApnsBody, EscapingIsNlohmanns) {
  v1::PushRequest r = Voip();
  r.clear_data();
  r.set_caller_display_name(std::string("q\"b\\n\n\x01\x1f\x7f/\xc3\xa9\t\0", 14));  // NUL too
  absl::StatusOr<HttpRequestSpec> s = BuildApnsRequest(r, Topic(), kNow);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(absl::StrContains(s->body,
                                "\"display-name\":\"q\\\"b\\\\n\\n\\u0001\\u001f\x7f/"
                                "\xc3\xa9\\t\\u0000\""))
      << s->body;
  EXPECT_EQ(json::parse(s->body)[kCallerNameKey], r.caller_display_name());
  EXPECT_EQ(s->body,
            "{\"aps\":{},\"call-id\":\"c-1@example.com\",\"display-name\":\"q\\\"b\\\\n\\n"
            "\\u0001\\u001f\x7f/\xc3\xa9\\t\\u0000\",\"from-uri\":\"sip:alice@example.com\"}");
}

TEST(ApnsBody, InvalidUtf8IsReplacedAsTheDomDoes) {
  for (std::string bad : {std::string("\xff"), std::string("a\xc3"), std::string("\xc0\xaf"),
                          std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")}) {
    v1::PushRequest r = Voip();
    r.set_caller_display_name(bad);
    (*r.mutable_data())["k"] = bad;
    absl::StatusOr<HttpRequestSpec> s = BuildApnsRequest(r, Topic(), kNow);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->body, *ApnsBodyWithDom(r));
    json body = json::parse(s->body);
    EXPECT_TRUE(absl::StrContains(body[kCallerNameKey].get<std::string>(), "\xef\xbf\xbd"));
  }
}

TEST(ApnsBody, DataKeyApsCollides) {
  v1::PushRequest r = Voip();
  (*r.mutable_data())["aps"] = "x";
  absl::StatusOr<HttpRequestSpec> s = BuildApnsRequest(r, Topic(), kNow);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "data: key 'aps' collides with a field the request already sets");
  EXPECT_EQ(ApnsBodyWithDom(r).status(), s.status());
  r.clear_data();
  r.clear_call_id();
  (*r.mutable_data())[kCallIdKey] = "mine";  // no call id in the request: a data key like any
  s = BuildApnsRequest(r, Topic(), kNow);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(json::parse(s->body)[kCallIdKey], "mine");
}

TEST(BuildFcmRequest, VoipIsHighPriorityDataMessage) {
  absl::StatusOr<HttpRequestSpec> s = BuildFcmRequest(FcmVoip(), "my-project");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->method, "POST");
  EXPECT_EQ(s->path, "/v1/projects/my-project/messages:send");
  EXPECT_EQ(Headers(*s)["content-type"], "application/json");
  EXPECT_EQ(json::parse(s->body), json::parse(R"({"message":{
      "token":"fcm-token:1",
      "data":{"call-id":"c-1@example.com","from-uri":"sip:alice@example.com",
              "display-name":"Alice \"A\"","extra":"1"},
      "android":{"priority":"high","ttl":"30s","collapse_key":"call"}}})"));
}

TEST(BuildFcmRequest, PriorityTtlAndAlert) {
  v1::PushRequest d = FcmVoip();
  d.set_kind(v1::DATA);
  d.mutable_time_to_live()->set_nanos(500'000'000);
  json body = json::parse(BuildFcmRequest(d, "p")->body);
  EXPECT_EQ(body["message"]["android"]["priority"], "normal");
  EXPECT_EQ(body["message"]["android"]["ttl"], "30.5s");
  d.set_priority(v1::PRIORITY_HIGH);
  d.clear_time_to_live();
  body = json::parse(BuildFcmRequest(d, "p")->body);
  EXPECT_EQ(body["message"]["android"]["priority"], "high");
  EXPECT_EQ(body["message"]["android"]["ttl"], "0s");

  v1::PushRequest a = FcmVoip();
  a.set_kind(v1::ALERT);
  a.set_alert_title("Missed call");
  a.set_alert_body("from Alice");
  a.set_loc_key("IC_MISSED");
  a.set_badge(2);
  body = json::parse(BuildFcmRequest(a, "p")->body);
  EXPECT_EQ(body["message"]["notification"],
            json::parse(R"({"title":"Missed call","body":"from Alice"})"));
  EXPECT_EQ(body["message"]["android"]["notification"]["body_loc_key"], "IC_MISSED");
  EXPECT_EQ(body["message"]["android"]["notification"]["notification_count"], 2);
}

TEST(BuildFcmRequest, SizeLimit) {
  v1::PushRequest r = FcmVoip();
  r.clear_data();
  size_t used = std::string("call-id").size() + r.call_id().size() +
                std::string("from-uri").size() + r.caller_uri().size() +
                std::string("display-name").size() + r.caller_display_name().size();
  (*r.mutable_data())["k"] = std::string(4096 - used - 1, 'x');
  EXPECT_TRUE(BuildFcmRequest(r, "p").ok());
  (*r.mutable_data())["k"] += "x";
  absl::StatusOr<HttpRequestSpec> s = BuildFcmRequest(r, "p");
  EXPECT_TRUE(IsPayloadTooLarge(s.status()));
  EXPECT_EQ(s.status().message(), "payload is 4097 bytes, limit 4096");
}

}  // namespace
}  // namespace pushgate::pusher
