// JSON Web Tokens (RFC 7519) signed with ES256 (APNs provider tokens) or RS256 (Google OAuth2
// service-account assertions), plus the PEM key loading both need. Pure: no clock, no I/O.
//
//   ASSIGN_OR_RETURN(PKey key, LoadPrivateKeyPem(p8_text));
//   ASSIGN_OR_RETURN(std::string jwt, SignJwt(JwtAlg::kEs256, key, {{"kid", key_id}},
//                                              {{"iss", team_id}, {"iat", epoch_seconds}}));
//
// The emulator verifies tokens with DecodeJwtUnverified (to read kid/iss) then VerifyJwt.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace pushgate::pusher {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* k) const;
};
using PKey = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

enum class JwtAlg { kEs256, kRs256 };

// "ES256" / "RS256".
absl::string_view JwtAlgName(JwtAlg alg);

// A private key from PEM: PKCS#8 "PRIVATE KEY" (APNs .p8 files are EC P-256 in PKCS#8; Google
// service accounts hold RSA in PKCS#8), or the traditional "EC PRIVATE KEY" / "RSA PRIVATE KEY".
// Encrypted keys are refused (never prompts for a passphrase).
absl::StatusOr<PKey> LoadPrivateKeyPem(absl::string_view pem);

// A public key from a "PUBLIC KEY" (SubjectPublicKeyInfo) PEM, or the key of a "CERTIFICATE" PEM.
absl::StatusOr<PKey> LoadPublicKeyPem(absl::string_view pem);

// SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----") of a public or private key.
std::string PublicKeyPem(const PKey& key);

// Base64url (RFC 4648 section 5) without padding, on absl::WebSafeBase64Escape/Unescape.
// Decoding accepts only the canonical spelling: no '=' padding, no whitespace, no characters
// outside the url-safe alphabet, no non-zero trailing bits.
std::string Base64UrlEncode(absl::string_view data);
absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text);

// Signs header.claims. Sets the header's "alg" to the algorithm used ("ES256"/"RS256", replacing
// any other value) and "typ":"JWT" when absent.
// ES256 needs an EC P-256 key and yields the raw r||s signature (64 bytes); RS256 needs an RSA
// key (PKCS#1 v1.5, SHA-256). INVALID_ARGUMENT when the key does not fit the algorithm or the
// header/claims are not JSON objects (null counts as {}).
absl::StatusOr<std::string> SignJwt(JwtAlg alg, const PKey& private_key, nlohmann::json header,
                                    const nlohmann::json& claims);

// The implicit noexcept move constructor moves nlohmann::json, whose own noexcept move
// constructor reaches a throw that clang-tidy cannot rule out (json_value(value_t) for an
// impossible type): nothing here can throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct DecodedJwt {
  nlohmann::json header;
  nlohmann::json claims;
};

// Splits and decodes a compact JWT without checking its signature, e.g. to read "kid" or "iss"
// before choosing the verification key. INVALID_ARGUMENT for anything malformed.
absl::StatusOr<DecodedJwt> DecodeJwtUnverified(absl::string_view token);

// Decodes and checks that the header's "alg" is `alg` and that the signature verifies with
// `public_key` (a private key works too). UNAUTHENTICATED for a bad signature or algorithm,
// INVALID_ARGUMENT for a malformed token. Claims (exp, iat, ...) are the caller's business.
absl::StatusOr<DecodedJwt> VerifyJwt(absl::string_view token, JwtAlg alg, const PKey& public_key);

}  // namespace pushgate::pusher
