#include "pusher/core/classify.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"

namespace pushgate::pusher {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

struct Row {
  v1::Provider provider;
  int status;
  std::string body;
  std::string retry_after_header;
  v1::Outcome outcome;
  std::string reason;
  bool retryable;
  bool credential_problem;
  std::optional<absl::Duration> retry_after;
};

std::string FcmError(int code, const std::string& status, const std::string& error_code) {
  std::string details =
      error_code.empty()
          ? ""
          : R"(,"details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":")" +
                error_code + R"("}])";
  return R"({"error":{"code":)" + std::to_string(code) + R"(,"message":"m","status":")" + status +
         "\"" + details + "}}";
}

std::string ApnsError(const std::string& reason) { return R"({"reason":")" + reason + "\"}"; }

TEST(Classify, Table) {
  using v1::ACCEPTED;
  using v1::AUTH_FAILED;
  using v1::REJECTED;
  using v1::RETRY_LATER;
  using v1::TOKEN_INVALID;
  const v1::Provider A = v1::APNS;
  const v1::Provider S = v1::APNS_SANDBOX;
  const v1::Provider F = v1::FCM;
  const std::optional<absl::Duration> none;
  const Row rows[] = {
      // APNs
      {A, 200, "", "", ACCEPTED, "", false, false, none},
      {S, 200, "", "", ACCEPTED, "", false, false, none},
      {A, 410, R"({"reason":"Unregistered","timestamp":1699999999000})", "", TOKEN_INVALID,
       "Unregistered", false, false, none},
      {A, 410, ApnsError("ExpiredToken"), "", TOKEN_INVALID, "ExpiredToken", false, false, none},
      {A, 400, ApnsError("BadDeviceToken"), "", TOKEN_INVALID, "BadDeviceToken", false, false,
       none},
      {A, 400, ApnsError("DeviceTokenNotForTopic"), "", TOKEN_INVALID, "DeviceTokenNotForTopic",
       false, false, none},
      {A, 403, ApnsError("ExpiredProviderToken"), "", AUTH_FAILED, "ExpiredProviderToken", true,
       true, none},
      {A, 403, ApnsError("InvalidProviderToken"), "", AUTH_FAILED, "InvalidProviderToken", false,
       true, none},
      {A, 403, ApnsError("BadCertificate"), "", AUTH_FAILED, "BadCertificate", false, true, none},
      {A, 403, ApnsError("BadCertificateEnvironment"), "", AUTH_FAILED, "BadCertificateEnvironment",
       false, true, none},
      {A, 403, ApnsError("MissingProviderToken"), "", AUTH_FAILED, "MissingProviderToken", false,
       true, none},
      {A, 403, ApnsError("Forbidden"), "", AUTH_FAILED, "Forbidden", false, true, none},
      {A, 400, ApnsError("TopicDisallowed"), "", REJECTED, "TopicDisallowed", false, false, none},
      {A, 400, ApnsError("BadTopic"), "", REJECTED, "BadTopic", false, false, none},
      {A, 400, ApnsError("BadPriority"), "", REJECTED, "BadPriority", false, false, none},
      {A, 400, ApnsError("MissingTopic"), "", REJECTED, "MissingTopic", false, false, none},
      {A, 400, ApnsError("PayloadEmpty"), "", REJECTED, "PayloadEmpty", false, false, none},
      {A, 400, ApnsError("BadExpirationDate"), "", REJECTED, "BadExpirationDate", false, false,
       none},
      {A, 400, ApnsError("BadCollapseId"), "", REJECTED, "BadCollapseId", false, false, none},
      {A, 404, ApnsError("BadPath"), "", REJECTED, "BadPath", false, false, none},
      {A, 405, ApnsError("MethodNotAllowed"), "", REJECTED, "MethodNotAllowed", false, false, none},
      {A, 413, ApnsError("PayloadTooLarge"), "", REJECTED, "PayloadTooLarge", false, false, none},
      {A, 429, ApnsError("TooManyRequests"), "", RETRY_LATER, "TooManyRequests", true, false, none},
      {A, 429, ApnsError("TooManyProviderTokenUpdates"), "", RETRY_LATER,
       "TooManyProviderTokenUpdates", true, false, none},
      {A, 500, ApnsError("InternalServerError"), "", RETRY_LATER, "InternalServerError", true,
       false, none},
      {A, 503, ApnsError("ServiceUnavailable"), "7", RETRY_LATER, "ServiceUnavailable", true, false,
       absl::Seconds(7)},
      {A, 503, ApnsError("Shutdown"), "", RETRY_LATER, "Shutdown", true, false, none},
      {A, 502, "<html>bad gateway</html>", "", RETRY_LATER, "HTTP 502", true, false, none},
      {A, 400, "not json", "", REJECTED, "HTTP 400", false, false, none},
      {A, 400, "[1,2]", "", REJECTED, "HTTP 400", false, false, none},
      {A, 302, "", "", REJECTED, "HTTP 302", false, false, none},
      // FCM
      {F, 200, R"({"name":"projects/p/messages/0:1"})", "", ACCEPTED, "", false, false, none},
      {F, 404, FcmError(404, "NOT_FOUND", "UNREGISTERED"), "", TOKEN_INVALID, "UNREGISTERED", false,
       false, none},
      {F, 400, FcmError(400, "INVALID_ARGUMENT", "UNREGISTERED"), "", TOKEN_INVALID, "UNREGISTERED",
       false, false, none},
      {F, 400, FcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), "", REJECTED,
       "INVALID_ARGUMENT", false, false, none},
      {F, 400, FcmError(400, "INVALID_ARGUMENT", ""), "", REJECTED, "INVALID_ARGUMENT", false,
       false, none},
      {F, 404, FcmError(404, "NOT_FOUND", ""), "", REJECTED, "NOT_FOUND", false, false, none},
      {F, 403, FcmError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), "", TOKEN_INVALID,
       "SENDER_ID_MISMATCH", false, false, none},
      {F, 403, FcmError(403, "PERMISSION_DENIED", ""), "", AUTH_FAILED, "PERMISSION_DENIED", false,
       true, none},
      {F, 401, FcmError(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"), "", AUTH_FAILED,
       "THIRD_PARTY_AUTH_ERROR", false, false, none},
      {F, 401, FcmError(401, "UNAUTHENTICATED", ""), "", AUTH_FAILED, "UNAUTHENTICATED", true, true,
       none},
      {F, 429, FcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), "", RETRY_LATER,
       "QUOTA_EXCEEDED", true, false, absl::Seconds(60)},
      {F, 429, FcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), "120", RETRY_LATER,
       "QUOTA_EXCEEDED", true, false, absl::Seconds(120)},
      {F, 500, FcmError(500, "INTERNAL", "INTERNAL"), "", RETRY_LATER, "INTERNAL", true, false,
       none},
      {F, 503, FcmError(503, "UNAVAILABLE", "UNAVAILABLE"), "Tue, 14 Nov 2023 22:13:40 GMT",
       RETRY_LATER, "UNAVAILABLE", true, false, absl::Seconds(20)},
      {F, 503, "", "", RETRY_LATER, "HTTP 503", true, false, none},
      {F, 400, "{\"error\":\"weird\"}", "", REJECTED, "HTTP 400", false, false, none},
      {F, 200, "garbage", "", ACCEPTED, "", false, false, none},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(testing::Message()
                 << v1::Provider_Name(row.provider) << " " << row.status << " " << row.body);
    ProviderVerdict v = Classify(row.provider, row.status, row.body, row.retry_after_header, kNow);
    EXPECT_EQ(v.outcome, row.outcome);
    EXPECT_EQ(v.reason, row.reason);
    EXPECT_EQ(v.retryable, row.retryable);
    EXPECT_EQ(v.credential_problem, row.credential_problem);
    EXPECT_EQ(v.retry_after, row.retry_after);
    if (row.status != 410) {
      EXPECT_FALSE(v.token_invalid_since.has_value());
    }
  }
}

TEST(Classify, ApnsUnregisteredTimestamp) {
  ProviderVerdict v =
      Classify(v1::APNS, 410, R"({"reason":"Unregistered","timestamp":1699999999123})", "", kNow);
  ASSERT_TRUE(v.token_invalid_since.has_value());
  EXPECT_EQ(*v.token_invalid_since, absl::FromUnixMillis(1699999999123));
  ProviderVerdict s =
      Classify(v1::APNS, 410, R"({"reason":"Unregistered","timestamp":"1699999999000"})", "", kNow);
  EXPECT_EQ(*s.token_invalid_since, absl::FromUnixMillis(1699999999000));
  ProviderVerdict missing = Classify(v1::APNS, 410, ApnsError("ExpiredToken"), "", kNow);
  EXPECT_EQ(missing.outcome, v1::TOKEN_INVALID);
  EXPECT_FALSE(missing.token_invalid_since.has_value());
}

// Found by fuzz_provider_response: a float timestamp beyond int64 was converted anyway
// (undefined behaviour; the asan preset's UBSan aborts on the old code).
TEST(Classify, ApnsTimestampOutOfRangeIsIgnored) {
  for (const char* ts : {"1e308", "-1e308", "9.3e18"}) {
    ProviderVerdict v = Classify(
        v1::APNS, 410, absl::StrCat(R"({"reason":"Unregistered","timestamp":)", ts, "}"), "", kNow);
    EXPECT_EQ(v.outcome, v1::TOKEN_INVALID) << ts;
    EXPECT_FALSE(v.token_invalid_since.has_value()) << ts;
  }
  ProviderVerdict f =
      Classify(v1::APNS, 410, R"({"reason":"Unregistered","timestamp":1.7e12})", "", kNow);
  EXPECT_EQ(f.token_invalid_since, absl::FromUnixMillis(1'700'000'000'000));
}

TEST(Classify, FcmMessageIdAndText) {
  ProviderVerdict ok = Classify(v1::FCM, 200, R"({"name":"projects/p/messages/0:1"})", "", kNow);
  EXPECT_EQ(ok.message_id, "projects/p/messages/0:1");
  ProviderVerdict err =
      Classify(v1::FCM, 404, FcmError(404, "NOT_FOUND", "UNREGISTERED"), "", kNow);
  EXPECT_EQ(err.message, "m");
}

TEST(ParseRetryAfter, Forms) {
  EXPECT_EQ(ParseRetryAfter("0", kNow), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter(" 30 ", kNow), absl::Seconds(30));
  // kNow is Tue, 14 Nov 2023 22:13:20 GMT.
  EXPECT_EQ(ParseRetryAfter("Tue, 14 Nov 2023 22:14:20 GMT", kNow), absl::Seconds(60));
  EXPECT_EQ(ParseRetryAfter("Tuesday, 14-Nov-23 22:14:20 GMT", kNow), absl::Seconds(60));
  EXPECT_EQ(ParseRetryAfter("Tue Nov 14 22:14:20 2023", kNow), absl::Seconds(60));
  EXPECT_EQ(ParseRetryAfter("Tue, 14 Nov 2023 22:00:00 GMT", kNow), absl::ZeroDuration());
  EXPECT_FALSE(ParseRetryAfter("", kNow).has_value());
  EXPECT_FALSE(ParseRetryAfter("-5", kNow).has_value());
  EXPECT_FALSE(ParseRetryAfter("soon", kNow).has_value());
  EXPECT_FALSE(ParseRetryAfter("1.5", kNow).has_value());
}

}  // namespace
}  // namespace pushgate::pusher
