#include "pusher/core/jwt.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace pushgate::pusher {
namespace {

PKey NewEcKey() { return PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }
// RSA generation is slow: one key shared by the tests (each caller gets its own reference).
PKey NewRsaKey() {
  static EVP_PKEY* const shared = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  EVP_PKEY_up_ref(shared);
  return PKey(shared);
}

std::string PrivatePem(const PKey& key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int): OpenSSL's type
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

// Verifies with OpenSSL directly (independent of VerifyJwt): raw r||s -> DER for ES256.
bool OpenSslVerifies(const std::string& token, JwtAlg alg, EVP_PKEY* key) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return false;
  std::string input = parts[0] + "." + parts[1];
  absl::StatusOr<std::string> sig = Base64UrlDecode(parts[2]);
  if (!sig.ok()) return false;
  std::string der = *sig;
  if (alg == JwtAlg::kEs256) {
    if (sig->size() != 64) return false;
    const auto* raw = reinterpret_cast<const unsigned char*>(sig->data());
    ECDSA_SIG* es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, nullptr), BN_bin2bn(raw + 32, 32, nullptr));
    unsigned char* buf = nullptr;
    int len = i2d_ECDSA_SIG(es, &buf);
    der.assign(reinterpret_cast<char*>(buf), static_cast<size_t>(len));
    OPENSSL_free(buf);
    ECDSA_SIG_free(es);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  int ok = EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                            reinterpret_cast<const unsigned char*>(input.data()), input.size());
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok == 1;
}

TEST(Base64Url, RoundTripsAllLengthsWithoutPadding) {
  std::string data;
  for (int i = 0; i < 40; ++i) {
    std::string enc = Base64UrlEncode(data);
    EXPECT_EQ(enc.find('='), std::string::npos);
    EXPECT_EQ(enc.find('+'), std::string::npos);
    EXPECT_EQ(enc.find('/'), std::string::npos);
    absl::StatusOr<std::string> dec = Base64UrlDecode(enc);
    ASSERT_TRUE(dec.ok()) << dec.status();
    EXPECT_EQ(*dec, data);
    data.push_back(static_cast<char>(0xf0 + i * 37));
  }
}

TEST(Base64Url, KnownVectors) {
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(*Base64UrlDecode("-_8"), "\xfb\xff");
}

TEST(Base64Url, RejectsBadInput) {
  EXPECT_FALSE(Base64UrlDecode("Zg==").ok());   // padding
  EXPECT_FALSE(Base64UrlDecode("Z+8").ok());    // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Zm9vY").ok());  // impossible length
  EXPECT_FALSE(Base64UrlDecode("Zh").ok());     // non-zero trailing bits
  // What absl::WebSafeBase64Unescape alone would accept: whitespace anywhere, padding.
  EXPECT_FALSE(Base64UrlDecode("Zm9v\n").ok());
  EXPECT_FALSE(Base64UrlDecode(" Zm9v").ok());
  EXPECT_FALSE(Base64UrlDecode("Zm 9v").ok());
  EXPECT_FALSE(Base64UrlDecode("Zm8=").ok());
  EXPECT_FALSE(Base64UrlDecode("Zm9=").ok());  // padding and non-zero trailing bits
  EXPECT_EQ(*Base64UrlDecode(""), "");
}

TEST(Jwt, Es256SignatureVerifiesWithOpenSsl) {
  PKey key = NewEcKey();
  ASSERT_NE(key, nullptr);
  absl::StatusOr<std::string> token =
      SignJwt(JwtAlg::kEs256, key, {{"kid", "ABC123DEFG"}}, {{"iss", "TEAM123456"}, {"iat", 1}});
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(OpenSslVerifies(*token, JwtAlg::kEs256, key.get()));
  std::vector<std::string> parts = absl::StrSplit(*token, '.');
  EXPECT_EQ(Base64UrlDecode(parts[2])->size(), 64u);

  absl::StatusOr<DecodedJwt> d = DecodeJwtUnverified(*token);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->header["alg"], "ES256");
  EXPECT_EQ(d->header["kid"], "ABC123DEFG");
  EXPECT_EQ(d->header["typ"], "JWT");
  EXPECT_EQ(d->claims["iss"], "TEAM123456");
  EXPECT_EQ(d->claims["iat"], 1);
}

TEST(Jwt, Rs256SignatureVerifiesWithOpenSsl) {
  PKey key = NewRsaKey();
  ASSERT_NE(key, nullptr);
  absl::StatusOr<std::string> token =
      SignJwt(JwtAlg::kRs256, key, nlohmann::json::object(), {{"iss", "sa@example.com"}});
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(OpenSslVerifies(*token, JwtAlg::kRs256, key.get()));
  EXPECT_EQ(DecodeJwtUnverified(*token)->header["alg"], "RS256");
}

TEST(Jwt, VerifyAcceptsOwnTokensThroughPublicKeyPem) {
  for (JwtAlg alg : {JwtAlg::kEs256, JwtAlg::kRs256}) {
    PKey key = alg == JwtAlg::kEs256 ? NewEcKey() : NewRsaKey();
    absl::StatusOr<PKey> priv = LoadPrivateKeyPem(PrivatePem(key));
    ASSERT_TRUE(priv.ok()) << priv.status();
    absl::StatusOr<PKey> pub = LoadPublicKeyPem(PublicKeyPem(key));
    ASSERT_TRUE(pub.ok()) << pub.status();
    absl::StatusOr<std::string> token = SignJwt(alg, *priv, {}, {{"sub", "x"}});
    ASSERT_TRUE(token.ok()) << token.status();
    absl::StatusOr<DecodedJwt> d = VerifyJwt(*token, alg, *pub);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->claims["sub"], "x");
  }
}

TEST(Jwt, TamperedTokenRejected) {
  PKey key = NewEcKey();
  std::string token = *SignJwt(JwtAlg::kEs256, key, {}, {{"iss", "TEAM123456"}});
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  std::string forged_claims = Base64UrlEncode(R"({"iss":"EVIL123456"})");
  std::string forged = parts[0] + "." + forged_claims + "." + parts[2];
  absl::StatusOr<DecodedJwt> d = VerifyJwt(forged, JwtAlg::kEs256, key);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnauthenticated) << d.status();
  EXPECT_FALSE(OpenSslVerifies(forged, JwtAlg::kEs256, key.get()));

  // A flipped signature bit.
  std::string sig = *Base64UrlDecode(parts[2]);
  sig[10] = static_cast<char>(sig[10] ^ 1);
  std::string bad_sig = parts[0] + "." + parts[1] + "." + Base64UrlEncode(sig);
  EXPECT_EQ(VerifyJwt(bad_sig, JwtAlg::kEs256, key).status().code(),
            absl::StatusCode::kUnauthenticated);

  // Another key.
  PKey other = NewEcKey();
  EXPECT_EQ(VerifyJwt(token, JwtAlg::kEs256, other).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(VerifyJwt(token, JwtAlg::kEs256, key).ok());
}

TEST(Jwt, WrongAlgRejected) {
  PKey ec = NewEcKey();
  PKey rsa = NewRsaKey();
  std::string es_token = *SignJwt(JwtAlg::kEs256, ec, {}, {{"a", 1}});
  absl::StatusOr<DecodedJwt> d = VerifyJwt(es_token, JwtAlg::kRs256, rsa);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(d.status().message(), "ES256")) << d.status();

  // "alg":"none" with an empty signature.
  std::string none = Base64UrlEncode(R"({"alg":"none"})") + "." + Base64UrlEncode("{}") + ".";
  EXPECT_EQ(VerifyJwt(none, JwtAlg::kEs256, ec).status().code(),
            absl::StatusCode::kUnauthenticated);

  // No alg at all, with an otherwise valid signature over the same bytes.
  std::string input = Base64UrlEncode(R"({"typ":"JWT"})") + "." + Base64UrlEncode("{}");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, rsa.get());
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  EVP_MD_CTX_free(ctx);
  std::string no_alg = input + "." + Base64UrlEncode(sig.substr(0, len));
  absl::StatusOr<DecodedJwt> missing = VerifyJwt(no_alg, JwtAlg::kRs256, rsa);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "absent")) << missing.status();

  // Signing with a key that does not fit the algorithm.
  EXPECT_EQ(SignJwt(JwtAlg::kEs256, rsa, {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignJwt(JwtAlg::kRs256, ec, {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  PKey p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  EXPECT_EQ(SignJwt(JwtAlg::kEs256, p384, {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Jwt, MalformedTokensRejected) {
  EXPECT_EQ(DecodeJwtUnverified("a.b").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeJwtUnverified("a.b.c.d").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(
      DecodeJwtUnverified(Base64UrlEncode("not json") + "." + Base64UrlEncode("{}") + ".").ok());
  EXPECT_FALSE(
      DecodeJwtUnverified(Base64UrlEncode("[1]") + "." + Base64UrlEncode("{}") + ".").ok());
  EXPECT_TRUE(DecodeJwtUnverified(Base64UrlEncode("{}") + "." + Base64UrlEncode("{}") + ".").ok());
}

TEST(Jwt, KeyLoadingFormats) {
  PKey ec = NewEcKey();
  // Traditional "EC PRIVATE KEY".
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey_traditional(bio, ec.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int): OpenSSL's type
  std::string traditional(data, static_cast<size_t>(len));
  BIO_free(bio);
  ASSERT_TRUE(absl::StrContains(traditional, "BEGIN EC PRIVATE KEY"));
  EXPECT_TRUE(LoadPrivateKeyPem(traditional).ok());
  EXPECT_TRUE(absl::StrContains(PrivatePem(ec), "BEGIN PRIVATE KEY"));
  EXPECT_TRUE(LoadPrivateKeyPem(PrivatePem(ec)).ok());

  EXPECT_EQ(LoadPrivateKeyPem("garbage").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadPublicKeyPem("garbage").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(LoadPrivateKeyPem(PublicKeyPem(ec)).ok());
  EXPECT_TRUE(absl::StrContains(PublicKeyPem(ec), "BEGIN PUBLIC KEY"));
}

TEST(Jwt, PublicKeyFromCertificate) {
  PKey ec = NewEcKey();
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, ec.get());
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  ASSERT_GT(X509_sign(cert, ec.get(), EVP_sha256()), 0);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int): OpenSSL's type
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  X509_free(cert);

  absl::StatusOr<PKey> pub = LoadPublicKeyPem(pem);
  ASSERT_TRUE(pub.ok()) << pub.status();
  std::string token = *SignJwt(JwtAlg::kEs256, ec, {}, {{"iss", "T"}});
  EXPECT_TRUE(VerifyJwt(token, JwtAlg::kEs256, *pub).ok());
}

}  // namespace
}  // namespace pushgate::pusher
