#include "pusher/core/apns_token.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/strings/match.h"

namespace pushgate::pusher {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

PKey NewEcKey() { return PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

std::unique_ptr<ApnsTokenSigner> MakeSigner(PKey* public_copy = nullptr,
                                            absl::Duration refresh = absl::Minutes(40)) {
  PKey key = NewEcKey();
  if (public_copy != nullptr) *public_copy = *LoadPublicKeyPem(PublicKeyPem(key));
  auto signer = ApnsTokenSigner::Create("TEAM123456", "KEY1234567", std::move(key), refresh);
  EXPECT_TRUE(signer.ok()) << signer.status();
  return std::move(signer).value();
}

TEST(ApnsTokenSigner, TokenHasAppleHeaderAndClaimsAndVerifies) {
  PKey pub;
  auto signer = MakeSigner(&pub);
  absl::StatusOr<std::string> token = signer->Token(kT0 + absl::Milliseconds(700));
  ASSERT_TRUE(token.ok()) << token.status();
  absl::StatusOr<DecodedJwt> d = VerifyJwt(*token, JwtAlg::kEs256, pub);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->header["alg"], "ES256");
  EXPECT_EQ(d->header["kid"], "KEY1234567");
  EXPECT_EQ(d->claims["iss"], "TEAM123456");
  EXPECT_EQ(d->claims["iat"], 1'700'000'000);
  EXPECT_EQ(d->claims.size(), 2u);
  EXPECT_EQ(signer->issued_at(), kT0);
}

TEST(ApnsTokenSigner, ReusedUntilRefreshAgeThenRenewed) {
  auto signer = MakeSigner(nullptr, absl::Minutes(40));
  std::string first = *signer->Token(kT0);
  EXPECT_EQ(*signer->Token(kT0 + absl::Minutes(1)), first);
  EXPECT_EQ(*signer->Token(kT0 + absl::Minutes(39) + absl::Seconds(59)), first);
  std::string second = *signer->Token(kT0 + absl::Minutes(40));
  EXPECT_NE(second, first);
  EXPECT_EQ(DecodeJwtUnverified(second)->claims["iat"], 1'700'000'000 + 40 * 60);
  EXPECT_EQ(*signer->Token(kT0 + absl::Minutes(41)), second);
}

TEST(ApnsTokenSigner, AuthorizationHeaderFollowsTheToken) {
  auto signer = MakeSigner(nullptr, absl::Minutes(40));
  std::string header = *signer->AuthorizationHeader(kT0);
  EXPECT_EQ(header, "bearer " + *signer->Token(kT0));
  // Renewed together: the header never carries a token other than the current one.
  std::string renewed = *signer->AuthorizationHeader(kT0 + absl::Minutes(40));
  EXPECT_NE(renewed, header);
  EXPECT_EQ(renewed, "bearer " + *signer->Token(kT0 + absl::Minutes(41)));
  EXPECT_EQ(DecodeJwtUnverified(renewed.substr(7))->claims["iat"], 1'700'000'000 + 40 * 60);
  signer->Invalidate(kT0 + absl::Minutes(61));
  EXPECT_EQ(*signer->AuthorizationHeader(kT0 + absl::Minutes(61)),
            "bearer " + *signer->Token(kT0 + absl::Minutes(61)));
  EXPECT_NE(*signer->AuthorizationHeader(kT0 + absl::Minutes(61)), renewed);
}

TEST(ApnsTokenSigner, InvalidateRespectsTwentyMinuteFloor) {
  auto signer = MakeSigner();
  std::string first = *signer->Token(kT0);
  // Refused after 5 minutes: no new token before 20 minutes (TooManyProviderTokenUpdates).
  EXPECT_EQ(signer->Invalidate(kT0 + absl::Minutes(5)), kT0 + absl::Minutes(20));
  EXPECT_EQ(*signer->Token(kT0 + absl::Minutes(19)), first);
  std::string second = *signer->Token(kT0 + absl::Minutes(20));
  EXPECT_NE(second, first);
  // Invalidating a 25-minute-old token renews at once.
  absl::Time t2 = kT0 + absl::Minutes(45);
  EXPECT_EQ(signer->Invalidate(t2), t2);
  EXPECT_NE(*signer->Token(t2), second);
}

TEST(ApnsTokenSigner, CreateRejectsBadParameters) {
  EXPECT_FALSE(ApnsTokenSigner::Create("TEAM", "KEY1234567", NewEcKey()).ok());
  EXPECT_FALSE(ApnsTokenSigner::Create("TEAM123456", "key1234567", NewEcKey()).ok());
  auto too_fast =
      ApnsTokenSigner::Create("TEAM123456", "KEY1234567", NewEcKey(), absl::Minutes(10));
  EXPECT_FALSE(too_fast.ok());
  EXPECT_TRUE(absl::StrContains(too_fast.status().message(), "refresh age"));
  EXPECT_FALSE(
      ApnsTokenSigner::Create("TEAM123456", "KEY1234567", NewEcKey(), absl::Minutes(56)).ok());
  PKey rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
  auto wrong_key = ApnsTokenSigner::Create("TEAM123456", "KEY1234567", std::move(rsa));
  EXPECT_FALSE(wrong_key.ok());
  EXPECT_TRUE(absl::StrContains(wrong_key.status().message(), "ES256"));
}

TEST(ApnsTokenSigner, ConcurrentCallersShareOneToken) {
  auto signer = MakeSigner();
  std::vector<std::string> seen(8);
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { seen[i] = *signer->Token(kT0 + absl::Seconds(i)); });
  }
  for (auto& t : threads) t.join();
  for (const std::string& s : seen) EXPECT_EQ(s, seen[0]);
}

}  // namespace
}  // namespace pushgate::pusher
