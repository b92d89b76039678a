#include "pusher/core/validate.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pushgate::pusher {
namespace {

const std::string kApnsToken(64, 'a');

v1::PushRequest ApnsRequest() {
  v1::PushRequest r;
  r.set_request_id("123e4567-e89b-12d3-a456-426614174000");
  r.mutable_destination()->set_provider(v1::APNS);
  r.mutable_destination()->set_app("ABCD123456.com.example.phone.voip");
  r.mutable_destination()->set_device_token(kApnsToken);
  r.set_kind(v1::VOIP);
  r.set_call_id("call-1");
  return r;
}

v1::PushRequest FcmRequest() {
  v1::PushRequest r;
  r.mutable_destination()->set_provider(v1::FCM);
  r.mutable_destination()->set_app("my-project");
  r.mutable_destination()->set_device_token("fcm:APA91b-token_value");
  r.set_kind(v1::DATA);
  r.set_request_id("not-a-uuid-is-fine-for-fcm");
  return r;
}

TEST(ValidateRequest, GoodRequestsPass) {
  EXPECT_TRUE(ValidateRequest(ApnsRequest()).ok()) << ValidateRequest(ApnsRequest());
  EXPECT_TRUE(ValidateRequest(FcmRequest()).ok()) << ValidateRequest(FcmRequest());
  v1::PushRequest sandbox = ApnsRequest();
  sandbox.mutable_destination()->set_provider(v1::APNS_SANDBOX);
  sandbox.set_request_id("");
  EXPECT_TRUE(ValidateRequest(sandbox).ok());
  v1::PushRequest upper = ApnsRequest();
  upper.set_request_id("123E4567-E89B-12D3-A456-426614174000");
  EXPECT_TRUE(ValidateRequest(upper).ok());
}

struct Case {
  const char* name;
  std::function<v1::PushRequest()> make;
  const char* field;    // expected prefix of the message
  const char* problem;  // expected substring
};

TEST(ValidateRequest, EachRuleNamesFieldAndProblem) {
  const Case cases[] = {
      {"provider unspecified",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_provider(v1::PROVIDER_UNSPECIFIED);
         return r;
       },
       "destination.provider", "unspecified"},
      {"provider unknown",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_provider(static_cast<v1::Provider>(42));
         return r;
       },
       "destination.provider", "unknown"},
      {"app empty",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_app("");
         return r;
       },
       "destination.app", "empty"},
      {"apns app bad",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_app("com.example.phone");
         return r;
       },
       "destination.app", "team id"},
      {"fcm app bad",
       [] {
         auto r = FcmRequest();
         r.mutable_destination()->set_app("my/project");
         return r;
       },
       "destination.app", "project id"},
      {"token empty",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_device_token("");
         return r;
       },
       "destination.device_token", "empty"},
      {"apns token not hex",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_device_token(std::string(63, 'a') + "g");
         return r;
       },
       "destination.device_token", "offset 63"},
      {"apns token odd length",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_device_token(std::string(63, 'a'));
         return r;
       },
       "destination.device_token", "63 hex characters"},
      {"apns token too short",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_device_token(std::string(30, 'a'));
         return r;
       },
       "destination.device_token", "30 hex"},
      {"apns token too long",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_device_token(std::string(202, 'a'));
         return r;
       },
       "destination.device_token", "202 hex"},
      {"fcm token too long",
       [] {
         auto r = FcmRequest();
         r.mutable_destination()->set_device_token(std::string(4097, 'a'));
         return r;
       },
       "destination.device_token", "4097 bytes"},
      {"fcm token whitespace",
       [] {
         auto r = FcmRequest();
         r.mutable_destination()->set_device_token("abc def");
         return r;
       },
       "destination.device_token", "whitespace"},
      {"kind unspecified",
       [] {
         auto r = ApnsRequest();
         r.set_kind(v1::PUSH_KIND_UNSPECIFIED);
         return r;
       },
       "kind", "unspecified"},
      {"data kind on apns",
       [] {
         auto r = ApnsRequest();
         r.set_kind(v1::DATA);
         return r;
       },
       "kind", "FCM only"},
      {"background high priority on apns",
       [] {
         auto r = ApnsRequest();
         r.set_kind(v1::BACKGROUND);
         r.set_priority(v1::PRIORITY_HIGH);
         return r;
       },
       "priority", "priority 5"},
      {"alert without text",
       [] {
         auto r = ApnsRequest();
         r.set_kind(v1::ALERT);
         return r;
       },
       "kind", "ALERT pushes need"},
      {"app too long (a 100 KB APNs topic reached the provider)",
       [] {
         auto r = ApnsRequest();
         r.mutable_destination()->set_app("TEAM123456." + std::string(246, 'b'));
         return r;
       },
       "destination.app", "257 bytes, at most 256"},
      {"collapse id too long",
       [] {
         auto r = ApnsRequest();
         r.set_collapse_id(std::string(65, 'c'));
         return r;
       },
       "collapse_id", "65 bytes"},
      {"negative ttl",
       [] {
         auto r = ApnsRequest();
         r.mutable_time_to_live()->set_seconds(-1);
         return r;
       },
       "time_to_live", "negative"},
      {"ttl too long",
       [] {
         auto r = FcmRequest();
         r.mutable_time_to_live()->set_seconds(int64_t{29} * 24 * 3600);
         return r;
       },
       "time_to_live", "28 days"},
      {"request id too long",
       [] {
         auto r = FcmRequest();
         r.set_request_id(std::string(65, 'r'));
         return r;
       },
       "request_id", "65 bytes"},
      {"apns request id not uuid",
       [] {
         auto r = ApnsRequest();
         r.set_request_id("retry-1");
         return r;
       },
       "request_id", "UUID"},
      {"data empty key",
       [] {
         auto r = FcmRequest();
         (*r.mutable_data())[""] = "x";
         return r;
       },
       "data", "empty key"},
      {"data reserved apns",
       [] {
         auto r = ApnsRequest();
         (*r.mutable_data())["aps"] = "x";
         return r;
       },
       "data", "'aps' is reserved"},
      {"data reserved fcm",
       [] {
         auto r = FcmRequest();
         (*r.mutable_data())["google.c.a"] = "x";
         return r;
       },
       "data", "reserved by FCM"},
      {"data too large",
       [] {
         auto r = FcmRequest();
         (*r.mutable_data())["big"] = std::string(4094, 'x');
         return r;
       },
       "data", "4097 bytes"},
  };
  for (const Case& c : cases) {
    absl::Status s = ValidateRequest(c.make());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), absl::StrCat(c.field, ": "))) << c.name << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), c.problem)) << c.name << ": " << s;
  }
}

TEST(ValidateRequest, LimitsAreInclusive) {
  auto r = ApnsRequest();
  r.set_collapse_id(std::string(64, 'c'));
  r.mutable_destination()->set_device_token(std::string(200, 'F'));
  EXPECT_TRUE(ValidateRequest(r).ok()) << ValidateRequest(r);
  r.mutable_destination()->set_device_token(std::string(32, '0'));
  EXPECT_TRUE(ValidateRequest(r).ok());
  auto f = FcmRequest();
  (*f.mutable_data())["big"] = std::string(4093, 'x');
  f.mutable_destination()->set_device_token(std::string(4096, 'a'));
  EXPECT_TRUE(ValidateRequest(f).ok()) << ValidateRequest(f);
}

TEST(ValidateRequest, TokenNeverInMessage) {
  auto r = ApnsRequest();
  std::string token = std::string(62, 'b') + "zz";
  r.mutable_destination()->set_device_token(token);
  absl::Status s = ValidateRequest(r);
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(absl::StrContains(s.message(), token));
}

TEST(IsUuid, Forms) {
  EXPECT_TRUE(IsUuid("123e4567-e89b-12d3-a456-426614174000"));
  EXPECT_FALSE(IsUuid("123e4567e89b12d3a456426614174000"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-42661417400g"));
  EXPECT_FALSE(IsUuid(""));
}

}  // namespace
}  // namespace pushgate::pusher
