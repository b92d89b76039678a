#include "pusher/core/fcm_auth.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace pushgate::pusher {
namespace {

using nlohmann::json;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

// One RSA key for the whole file (generation is slow).
const PKey& RsaKey() {
  static const PKey* key = new PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  return *key;
}

std::string RsaPem() {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, RsaKey().get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int): OpenSSL's type
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

json SaJson() {
  return {{"type", "service_account"},
          {"project_id", "my-project"},
          {"private_key_id", "abc123"},
          {"private_key", RsaPem()},
          {"client_email", "pusher@my-project.iam.gserviceaccount.com"},
          {"client_id", "1234"},
          {"token_uri", "https://oauth2.googleapis.com/token"}};
}

TEST(ServiceAccount, Parses) {
  absl::StatusOr<ServiceAccount> sa = ParseServiceAccountJson(SaJson().dump());
  ASSERT_TRUE(sa.ok()) << sa.status();
  EXPECT_EQ(sa->project_id, "my-project");
  EXPECT_EQ(sa->client_email, "pusher@my-project.iam.gserviceaccount.com");
  EXPECT_EQ(sa->token_uri, "https://oauth2.googleapis.com/token");
  EXPECT_EQ(sa->private_key_id, "abc123");
}

TEST(ServiceAccount, ErrorsNameTheField) {
  for (const char* field : {"type", "project_id", "private_key", "client_email", "token_uri"}) {
    json j = SaJson();
    j.erase(field);
    absl::Status s = ParseServiceAccountJson(j.dump()).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("missing field '", field, "'"))) << s;
    j[field] = 5;
    s = ParseServiceAccountJson(j.dump()).status();
    EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("field '", field, "'"))) << s;
  }
  json wrong_type = SaJson();
  wrong_type["type"] = "authorized_user";
  EXPECT_TRUE(absl::StrContains(ParseServiceAccountJson(wrong_type.dump()).status().message(),
                                "'authorized_user', expected 'service_account'"));
  json bad_key = SaJson();
  bad_key["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  EXPECT_TRUE(absl::StrContains(ParseServiceAccountJson(bad_key.dump()).status().message(),
                                "field 'private_key'"));
  json ec_key = SaJson();
  PKey ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, ec.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int): OpenSSL's type
  ec_key["private_key"] = std::string(data, static_cast<size_t>(len));
  BIO_free(bio);
  EXPECT_TRUE(absl::StrContains(ParseServiceAccountJson(ec_key.dump()).status().message(),
                                "not an RSA key"));
  EXPECT_EQ(ParseServiceAccountJson("{not json").status().message(),
            "service account file is not JSON");
  EXPECT_FALSE(ParseServiceAccountJson("[]").ok());
}

TEST(OAuthAssertion, ClaimsAndSignature) {
  ServiceAccount sa = *ParseServiceAccountJson(SaJson().dump());
  absl::StatusOr<std::string> jwt = BuildOAuthAssertion(sa, kNow);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  absl::StatusOr<PKey> pub = LoadPublicKeyPem(PublicKeyPem(RsaKey()));
  absl::StatusOr<DecodedJwt> d = VerifyJwt(*jwt, JwtAlg::kRs256, *pub);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->header["kid"], "abc123");
  EXPECT_EQ(d->claims, json::parse(R"({
      "iss":"pusher@my-project.iam.gserviceaccount.com",
      "scope":"https://www.googleapis.com/auth/firebase.messaging",
      "aud":"https://oauth2.googleapis.com/token",
      "iat":1700000000, "exp":1700003600})"));
}

TEST(OAuthAssertion, RequestBody) {
  EXPECT_EQ(
      OAuthTokenRequestBody("aa.bb-_.cc"),
      "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=aa.bb-_.cc");
  EXPECT_EQ(FormUrlEncode("a b+c/=&"), "a+b%2Bc%2F%3D%26");
}

TEST(OAuthTokenResponse, Success) {
  absl::StatusOr<AccessToken> t = ParseOAuthTokenResponse(
      200, R"({"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"})", kNow);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->token, "ya29.x");
  EXPECT_EQ(t->expires_at, kNow + absl::Seconds(3599));
  absl::StatusOr<AccessToken> no_expiry =
      ParseOAuthTokenResponse(200, R"({"access_token":"t"})", kNow);
  EXPECT_EQ(no_expiry->expires_at, kNow + absl::Hours(1));
}

// Found by fuzz_oauth_token: 1e300 was converted to int64 (undefined behaviour; on x86 the
// token came out already expired).
TEST(OAuthTokenResponse, HugeExpiresInIsCappedAtADay) {
  absl::StatusOr<AccessToken> t =
      ParseOAuthTokenResponse(200, R"({"access_token":"t","expires_in":1e300})", kNow);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->expires_at, kNow + absl::Hours(24));
  absl::StatusOr<AccessToken> u64 = ParseOAuthTokenResponse(
      200, R"({"access_token":"t","expires_in":18446744073709551615})", kNow);
  ASSERT_TRUE(u64.ok()) << u64.status();
  EXPECT_EQ(u64->expires_at, kNow + absl::Hours(24));
}

TEST(OAuthTokenResponse, Errors) {
  absl::Status refused =
      ParseOAuthTokenResponse(
          400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})", kNow)
          .status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(refused.message(),
            "token endpoint answered HTTP 400: invalid_grant: Invalid JWT Signature.");
  EXPECT_EQ(ParseOAuthTokenResponse(401, "", kNow).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ParseOAuthTokenResponse(503, "oops", kNow).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ParseOAuthTokenResponse(429, "{}", kNow).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(ParseOAuthTokenResponse(200, "{}", kNow).status().message(),
                                "without 'access_token'"));
  EXPECT_FALSE(ParseOAuthTokenResponse(200, "nope", kNow).ok());
  EXPECT_FALSE(ParseOAuthTokenResponse(200, R"({"access_token":"t","expires_in":-1})", kNow).ok());
  EXPECT_FALSE(
      ParseOAuthTokenResponse(200, R"({"access_token":"t","expires_in":"3600"})", kNow).ok());
  EXPECT_TRUE(absl::StrContains(
      ParseOAuthTokenResponse(200, R"({"access_token":"t","token_type":"MAC"})", kNow)
          .status()
          .message(),
      "token_type"));
}

TEST(AccessTokenCache, EmptyNeedsRefreshAndHasNoToken) {
  AccessTokenCache cache;
  EXPECT_FALSE(cache.Current(kNow).has_value());
  EXPECT_TRUE(cache.NeedsRefresh(kNow));
  EXPECT_TRUE(cache.RefreshStarted());
  EXPECT_FALSE(cache.RefreshStarted());  // only one refresher
  EXPECT_FALSE(cache.NeedsRefresh(kNow));
}

TEST(AccessTokenCache, RefreshEarlyWhileOldTokenServes) {
  AccessTokenCache cache;
  absl::Time expiry = kNow + absl::Hours(1);
  ASSERT_TRUE(cache.RefreshStarted());
  cache.Set({"tok1", expiry});
  EXPECT_EQ(cache.Current(kNow), "tok1");
  EXPECT_FALSE(cache.NeedsRefresh(expiry - absl::Minutes(5) - absl::Seconds(1)));
  EXPECT_EQ(cache.NextRefreshAt(), expiry - absl::Minutes(5));
  EXPECT_TRUE(cache.NeedsRefresh(expiry - absl::Minutes(5)));
  ASSERT_TRUE(cache.RefreshStarted());
  // Sends continue with the old token during the refresh...
  EXPECT_EQ(cache.Current(expiry - absl::Minutes(2)), "tok1");
  // ...but not within the 60 s safety margin.
  EXPECT_FALSE(cache.Current(expiry - absl::Seconds(60)).has_value());
  EXPECT_EQ(cache.Current(expiry - absl::Seconds(61)), "tok1");
  cache.Set({"tok2", expiry + absl::Hours(1)});
  EXPECT_EQ(cache.Current(expiry), "tok2");
  EXPECT_FALSE(cache.NeedsRefresh(expiry));
}

TEST(AccessTokenCache, FailedRefreshBacksOff) {
  AccessTokenCache cache;
  ASSERT_TRUE(cache.RefreshStarted());
  cache.RefreshFailed(kNow, absl::UnavailableError("boom"));
  EXPECT_EQ(cache.consecutive_failures(), 1);
  EXPECT_EQ(cache.last_error().message(), "boom");
  EXPECT_FALSE(cache.NeedsRefresh(kNow + absl::Milliseconds(999)));
  EXPECT_TRUE(cache.NeedsRefresh(kNow + absl::Seconds(1)));
  absl::Time t = kNow + absl::Seconds(1);
  std::vector<absl::Duration> waits;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(cache.RefreshStarted());
    cache.RefreshFailed(t, absl::UnavailableError("boom"));
    waits.push_back(cache.NextRefreshAt() - t);
    t = cache.NextRefreshAt();
  }
  EXPECT_EQ(waits[0], absl::Seconds(2));
  EXPECT_EQ(waits[1], absl::Seconds(4));
  EXPECT_EQ(waits[4], absl::Seconds(32));
  EXPECT_EQ(waits[5], absl::Seconds(60));
  EXPECT_EQ(waits[7], absl::Seconds(60));
  cache.RefreshStarted();
  cache.Set({"tok", t + absl::Hours(1)});
  EXPECT_EQ(cache.consecutive_failures(), 0);
  EXPECT_TRUE(cache.last_error().ok());
}

TEST(AccessTokenCache, InvalidateForcesRefresh) {
  AccessTokenCache cache;
  cache.RefreshStarted();
  cache.Set({"tok", kNow + absl::Hours(1)});
  EXPECT_FALSE(cache.NeedsRefresh(kNow));
  cache.Invalidate();
  EXPECT_FALSE(cache.Current(kNow).has_value());
  EXPECT_TRUE(cache.NeedsRefresh(kNow));
}

}  // namespace
}  // namespace pushgate::pusher
