#include "pusher/core/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pushgate::pusher {
namespace {

constexpr int kEs256CoordinateBytes = 32;
constexpr size_t kEs256SignatureBytes = size_t{2} * kEs256CoordinateBytes;  // raw r||s

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter>;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// The last OpenSSL error as text (and clears the queue so errors do not leak between calls).
std::string OpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  std::string text = "no detail";
  if (code != 0) {
    std::array<char, 256> buf{};
    ERR_error_string_n(code, buf.data(), buf.size());
    text = buf.data();
  }
  ERR_clear_error();
  return text;
}

BioPtr MemBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// Refuses to prompt for a passphrase: encrypted keys fail to load.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

// Whether `key` fits `alg`: ES256 = EC on P-256, RS256 = RSA.
absl::Status CheckKeyFitsAlg(JwtAlg alg, const PKey& key) {
  if (key == nullptr) return absl::InvalidArgumentError("no key");
  switch (alg) {
    case JwtAlg::kEs256: {
      if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
        return absl::InvalidArgumentError("ES256 needs an EC P-256 key, got another key type");
      }
      std::array<char, 64> group{};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key.get(), "group", group.data(), group.size(), &len) !=
              1 ||
          (absl::string_view(group.data(), len) != "prime256v1" &&
           absl::string_view(group.data(), len) != "P-256")) {
        ERR_clear_error();
        return absl::InvalidArgumentError(
            absl::StrCat("ES256 needs an EC key on curve P-256, got curve '",
                         absl::string_view(group.data(), len), "'"));
      }
      return absl::OkStatus();
    }
    case JwtAlg::kRs256:
      if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
        return absl::InvalidArgumentError("RS256 needs an RSA key, got another key type");
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown JWT algorithm");
}

// Serialises without throwing (invalid UTF-8 is replaced, not an exception).
std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<nlohmann::json> DecodeJsonPart(absl::string_view part, absl::string_view what) {
  absl::StatusOr<std::string> raw = Base64UrlDecode(part);
  if (!raw.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWT ", what, " is not base64url: ", raw.status().message()));
  }
  nlohmann::json j = nlohmann::json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat("JWT ", what, " is not valid JSON"));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("JWT ", what, " is not a JSON object"));
  }
  return j;
}

struct SplitToken {
  absl::string_view header;
  absl::string_view claims;
  absl::string_view signature;
  absl::string_view signing_input;  // header.claims
};

absl::StatusOr<SplitToken> Split(absl::string_view token) {
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWT must have 3 dot-separated parts, got ", parts.size()));
  }
  SplitToken s;
  s.header = parts[0];
  s.claims = parts[1];
  s.signature = parts[2];
  s.signing_input = token.substr(0, parts[0].size() + 1 + parts[1].size());
  return s;
}

absl::StatusOr<std::string> DigestSign(const PKey& key, absl::string_view input) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t sig_len = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &sig_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return absl::InternalError(absl::StrCat("signing failed: ", OpenSslError()));
  }
  std::string sig(sig_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return absl::InternalError(absl::StrCat("signing failed: ", OpenSslError()));
  }
  sig.resize(sig_len);
  return sig;
}

// DER ECDSA-Sig-Value -> raw r||s, each left-padded to 32 bytes.
absl::StatusOr<std::string> DerToRawEcdsa(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  EcdsaSigPtr sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));  // NOLINT(runtime/int): OpenSSL
  if (sig == nullptr) return absl::InternalError("cannot parse ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(kEs256SignatureBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, kEs256CoordinateBytes) != kEs256CoordinateBytes ||
      BN_bn2binpad(s, out + kEs256CoordinateBytes, kEs256CoordinateBytes) !=
          kEs256CoordinateBytes) {
    return absl::InternalError("ECDSA signature component too large");
  }
  return raw;
}

// Raw r||s (64 bytes) -> DER ECDSA-Sig-Value.
absl::StatusOr<std::string> RawToDerEcdsa(absl::string_view raw) {
  if (raw.size() != kEs256SignatureBytes) {
    return absl::UnauthenticatedError(
        absl::StrCat("ES256 signature must be 64 bytes, got ", raw.size()));
  }
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(in, kEs256CoordinateBytes, nullptr);
  BIGNUM* s = BN_bin2bn(in + kEs256CoordinateBytes, kEs256CoordinateBytes, nullptr);
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || sig == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return absl::InternalError("cannot build ECDSA signature");
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return absl::InternalError("cannot encode ECDSA signature");
  std::string der(static_cast<size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &out);
  return der;
}

}  // namespace

void EvpPkeyDeleter::operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }

absl::string_view JwtAlgName(JwtAlg alg) {
  switch (alg) {
    case JwtAlg::kEs256:
      return "ES256";
    case JwtAlg::kRs256:
      return "RS256";
  }
  return "unknown";
}

absl::StatusOr<PKey> LoadPrivateKeyPem(absl::string_view pem) {
  BioPtr bio = MemBio(pem);
  if (bio == nullptr) return absl::InternalError("out of memory");
  PKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a usable private key PEM (PKCS#8, EC or RSA, unencrypted): ", OpenSslError()));
  }
  ERR_clear_error();
  return key;
}

absl::StatusOr<PKey> LoadPublicKeyPem(absl::string_view pem) {
  {
    BioPtr bio = MemBio(pem);
    PKey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
    if (key != nullptr) {
      ERR_clear_error();
      return key;
    }
    ERR_clear_error();
  }
  BioPtr bio = MemBio(pem);
  std::unique_ptr<X509, X509Deleter> cert(
      PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a \"PUBLIC KEY\" or \"CERTIFICATE\" PEM: ", OpenSslError()));
  }
  PKey key(X509_get_pubkey(cert.get()));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate has no usable public key: ", OpenSslError()));
  }
  ERR_clear_error();
  return key;
}

std::string PublicKeyPem(const PKey& key) {
  if (key == nullptr) return "";
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    ERR_clear_error();
    return "";
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int): OpenSSL's type
  return std::string(data, static_cast<size_t>(len));
}

std::string Base64UrlEncode(absl::string_view data) { return absl::WebSafeBase64Escape(data); }

absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text) {
  if (text.size() % 4 == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("base64url length ", text.size(), " is impossible"));
  }
  std::string out;
  if (!absl::WebSafeBase64Unescape(text, &out)) {
    return absl::InvalidArgumentError("invalid base64url character");
  }
  // absl also accepts '=' padding, whitespace and non-zero trailing bits: only the canonical
  // spelling, the one that encodes back to `text`, is base64url here.
  if (absl::WebSafeBase64Escape(out) != text) {
    return absl::InvalidArgumentError(
        "base64url is not canonical (padding, whitespace or non-zero trailing bits)");
  }
  return out;
}

absl::StatusOr<std::string> SignJwt(JwtAlg alg, const PKey& private_key, nlohmann::json header,
                                    const nlohmann::json& claims) {
  if (header.is_null()) header = nlohmann::json::object();  // `{}` in C++ braces is null
  if (!header.is_object()) return absl::InvalidArgumentError("JWT header must be a JSON object");
  if (!claims.is_object() && !claims.is_null())
    return absl::InvalidArgumentError("JWT claims must be a JSON object");
  if (absl::Status s = CheckKeyFitsAlg(alg, private_key); !s.ok()) return s;
  header["alg"] = std::string(JwtAlgName(alg));
  if (!header.contains("typ")) header["typ"] = "JWT";
  std::string input =
      absl::StrCat(Base64UrlEncode(DumpJson(header)), ".",
                   Base64UrlEncode(claims.is_null() ? std::string("{}") : DumpJson(claims)));
  absl::StatusOr<std::string> sig = DigestSign(private_key, input);
  if (!sig.ok()) return sig.status();
  if (alg == JwtAlg::kEs256) {
    sig = DerToRawEcdsa(*sig);
    if (!sig.ok()) return sig.status();
  }
  return absl::StrCat(input, ".", Base64UrlEncode(*sig));
}

absl::StatusOr<DecodedJwt> DecodeJwtUnverified(absl::string_view token) {
  absl::StatusOr<SplitToken> split = Split(token);
  if (!split.ok()) return split.status();
  DecodedJwt out;
  absl::StatusOr<nlohmann::json> header = DecodeJsonPart(split->header, "header");
  if (!header.ok()) return header.status();
  absl::StatusOr<nlohmann::json> claims = DecodeJsonPart(split->claims, "claims");
  if (!claims.ok()) return claims.status();
  out.header = std::move(*header);
  out.claims = std::move(*claims);
  return out;
}

absl::StatusOr<DecodedJwt> VerifyJwt(absl::string_view token, JwtAlg alg, const PKey& public_key) {
  absl::StatusOr<SplitToken> split = Split(token);
  if (!split.ok()) return split.status();
  absl::StatusOr<DecodedJwt> decoded = DecodeJwtUnverified(token);
  if (!decoded.ok()) return decoded.status();
  auto alg_it = decoded->header.find("alg");
  if (alg_it == decoded->header.end() || !alg_it->is_string() ||
      alg_it->get<std::string>() != JwtAlgName(alg)) {
    std::string found = alg_it == decoded->header.end() ? "absent" : DumpJson(*alg_it);
    return absl::UnauthenticatedError(
        absl::StrCat("JWT alg is ", found, ", expected \"", JwtAlgName(alg), "\""));
  }
  if (absl::Status s = CheckKeyFitsAlg(alg, public_key); !s.ok()) return s;
  absl::StatusOr<std::string> sig = Base64UrlDecode(split->signature);
  if (!sig.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWT signature is not base64url: ", sig.status().message()));
  }
  if (alg == JwtAlg::kEs256) {
    sig = RawToDerEcdsa(*sig);
    if (!sig.ok()) return sig.status();
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, public_key.get()) != 1) {
    return absl::InternalError(absl::StrCat("verification setup failed: ", OpenSslError()));
  }
  int ok =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                       reinterpret_cast<const unsigned char*>(split->signing_input.data()),
                       split->signing_input.size());
  ERR_clear_error();
  if (ok != 1) return absl::UnauthenticatedError("JWT signature does not verify");
  return decoded;
}

}  // namespace pushgate::pusher
