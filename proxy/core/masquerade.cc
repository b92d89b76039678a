#include "proxy/core/masquerade.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "proxy/core/byte_codec.h"

namespace pushgate::proxy {
namespace {

constexpr uint8_t kVersion = 1;
constexpr uint8_t kFlagInsertDomain = 1;
constexpr uint8_t kFlagDoroute = 2;
constexpr uint8_t kFlagAor = 4;
constexpr uint8_t kFlagDevice = 8;
constexpr size_t kDeviceTagSize = 8;
constexpr size_t kTagSize = 12;
constexpr absl::string_view kContext = "pushgate-masquerade-v1";

using bytes::Reader;

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("masquerade value malformed: ", why));
}

}  // namespace

std::string DeviceTag(absl::string_view device_key) {
  if (device_key.empty()) return "";
  constexpr absl::string_view kDeviceContext = "pushgate-device-v1";
  const std::string data = absl::StrCat(kDeviceContext, device_key);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1 ||
      len < kDeviceTagSize) {
    std::abort();  // OpenSSL cannot do SHA-256: a broken invariant
  }
  return std::string(reinterpret_cast<const char*>(md), kDeviceTagSize);
}

struct MasqueradeCodec::KeyState {
  struct CtxDeleter {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> inner;  // after absorbing key^ipad and kContext
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> outer;  // after absorbing key^opad
};

namespace {

// A broken invariant (OpenSSL cannot do SHA-256): crash loudly.
void CheckCrypto(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

MasqueradeCodec::MasqueradeCodec(const std::string& secret,
                                 const std::vector<std::string>& previous_secrets) {
  if (secret.empty()) {
    // A broken invariant: config validation must refuse an empty secret before this point.
    std::abort();
  }
  keys_.push_back(MakeKeyState(secret));
  for (const std::string& s : previous_secrets) {
    if (!s.empty()) keys_.push_back(MakeKeyState(s));
  }
}

std::shared_ptr<const MasqueradeCodec::KeyState> MasqueradeCodec::MakeKeyState(
    absl::string_view secret) {
  constexpr size_t kBlock = 64;  // SHA-256 block size
  std::array<unsigned char, kBlock> key{};
  if (secret.size() > kBlock) {
    unsigned int len = 0;
    CheckCrypto(EVP_Digest(secret.data(), secret.size(), key.data(), &len, EVP_sha256(), nullptr) ==
                1);
  } else {
    std::memcpy(key.data(), secret.data(), secret.size());
  }
  std::array<unsigned char, kBlock> ipad{};
  std::array<unsigned char, kBlock> opad{};
  for (size_t i = 0; i < kBlock; ++i) {
    ipad[i] = key[i] ^ 0x36;
    opad[i] = key[i] ^ 0x5c;
  }
  auto state = std::make_shared<MasqueradeCodec::KeyState>();
  state->inner.reset(EVP_MD_CTX_new());
  state->outer.reset(EVP_MD_CTX_new());
  CheckCrypto(state->inner && state->outer);
  CheckCrypto(EVP_DigestInit_ex(state->inner.get(), EVP_sha256(), nullptr) == 1 &&
              EVP_DigestUpdate(state->inner.get(), ipad.data(), ipad.size()) == 1 &&
              EVP_DigestUpdate(state->inner.get(), kContext.data(), kContext.size()) == 1 &&
              EVP_DigestInit_ex(state->outer.get(), EVP_sha256(), nullptr) == 1 &&
              EVP_DigestUpdate(state->outer.get(), opad.data(), opad.size()) == 1);
  OPENSSL_cleanse(key.data(), key.size());
  OPENSSL_cleanse(ipad.data(), ipad.size());
  OPENSSL_cleanse(opad.data(), opad.size());
  return state;
}

std::string MasqueradeCodec::GenerateSecret() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) std::abort();
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string MasqueradeCodec::Tag(const KeyState& key, absl::string_view signed_bytes) const {
  // One scratch context per thread, reused: no allocation per call.
  thread_local std::unique_ptr<EVP_MD_CTX, KeyState::CtxDeleter> work(EVP_MD_CTX_new());
  CheckCrypto(work != nullptr);
  unsigned char inner[EVP_MAX_MD_SIZE];
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int inner_len = 0;
  unsigned int mac_len = 0;
  CheckCrypto(EVP_MD_CTX_copy_ex(work.get(), key.inner.get()) == 1 &&
              EVP_DigestUpdate(work.get(), signed_bytes.data(), signed_bytes.size()) == 1 &&
              EVP_DigestFinal_ex(work.get(), inner, &inner_len) == 1 &&
              EVP_MD_CTX_copy_ex(work.get(), key.outer.get()) == 1 &&
              EVP_DigestUpdate(work.get(), inner, inner_len) == 1 &&
              EVP_DigestFinal_ex(work.get(), mac, &mac_len) == 1 && mac_len >= kTagSize);
  return std::string(reinterpret_cast<const char*>(mac), kTagSize);
}

Uri MasqueradeCodec::Masquerade(const Contact& contact, const TransportInfo& advertised,
                                const std::optional<std::string>& insert_domain_aor_domain,
                                const TransportInfo& original, absl::string_view aor,
                                absl::string_view device_key) const {
  std::string payload;
  uint8_t flags = kFlagDoroute;
  if (insert_domain_aor_domain) flags |= kFlagInsertDomain;
  if (!aor.empty()) flags |= kFlagAor;
  const std::string device_tag = DeviceTag(device_key);
  if (!device_tag.empty()) flags |= kFlagDevice;
  payload.push_back(static_cast<char>(kVersion));
  payload.push_back(static_cast<char>(flags));
  if (insert_domain_aor_domain) {
    bytes::AppendString(payload, *insert_domain_aor_domain);
  } else {
    payload.push_back(static_cast<char>(original.transport));
    payload.push_back(static_cast<char>(original.port >> 8));
    payload.push_back(static_cast<char>(original.port & 0xff));
    bytes::AppendString(payload, original.host);
  }
  if (!aor.empty()) bytes::AppendString(payload, aor);
  payload += device_tag;  // fixed size: no length prefix
  const std::string tag = Tag(*keys_.front(), payload);

  Uri out;
  out.scheme = contact.uri.scheme.empty() ? "sip" : contact.uri.scheme;
  out.user = contact.uri.user;
  out.host = advertised.host;
  if (advertised.port != 0) out.port = advertised.port;
  if (advertised.transport != Transport::kUdp) {
    out.params.emplace_back("transport", std::string(TransportName(advertised.transport)));
  }
  out.params.emplace_back(std::string(kMasqueradeParam), bytes::Base64UrlEncode(payload + tag));
  return out;
}

bool MasqueradeCodec::HasMarker(const Uri& uri) { return HasParam(uri, kMasqueradeParam); }

absl::StatusOr<MasqueradeTarget> MasqueradeCodec::Restore(const Uri& request_uri) const {
  std::optional<std::string> value = Param(request_uri, kMasqueradeParam);
  if (!value) return absl::NotFoundError("no masquerade parameter");
  std::optional<std::string> raw = bytes::Base64UrlDecode(*value);
  if (!raw) return Malformed("not base64url");
  if (raw->size() < 2 + kTagSize) return Malformed("too short");
  const absl::string_view payload = absl::string_view(*raw).substr(0, raw->size() - kTagSize);
  const absl::string_view tag = absl::string_view(*raw).substr(raw->size() - kTagSize);
  bool authentic = false;
  for (const auto& key : keys_) {
    const std::string expected = Tag(*key, payload);
    if (CRYPTO_memcmp(expected.data(), tag.data(), kTagSize) == 0) authentic = true;
  }
  if (!authentic) return absl::PermissionDeniedError("masquerade value failed authentication");

  Reader r(payload);
  uint8_t version = 0;
  uint8_t flags = 0;
  if (!r.Byte(version) || !r.Byte(flags)) return Malformed("truncated header");
  if (version != kVersion) return Malformed(absl::StrCat("unknown version ", version));
  MasqueradeTarget target;
  target.insert_domain = (flags & kFlagInsertDomain) != 0;
  target.doroute = (flags & kFlagDoroute) != 0;
  target.user = request_uri.user;
  if (target.insert_domain) {
    if (!r.String(target.aor_domain) || target.aor_domain.empty()) {
      return Malformed("bad domain");
    }
  } else {
    uint8_t transport = 0;
    uint8_t hi = 0;
    uint8_t lo = 0;
    if (!r.Byte(transport) || !r.Byte(hi) || !r.Byte(lo) || !r.String(target.original.host) ||
        target.original.host.empty() || transport > static_cast<uint8_t>(Transport::kTls)) {
      return Malformed("bad address");
    }
    target.original.transport = static_cast<Transport>(transport);
    target.original.port = static_cast<uint16_t>((hi << 8) | lo);
  }
  if ((flags & kFlagAor) != 0 && !r.String(target.aor)) return Malformed("bad aor");
  if ((flags & kFlagDevice) != 0) {
    for (size_t i = 0; i < kDeviceTagSize; ++i) {
      uint8_t c = 0;
      if (!r.Byte(c)) return Malformed("bad device tag");
      target.device_tag.push_back(static_cast<char>(c));
    }
  }
  if (!r.empty()) return Malformed("trailing bytes");

  Uri& restored = target.restored;
  restored.scheme = request_uri.scheme.empty() ? "sip" : request_uri.scheme;
  restored.user = request_uri.user;
  if (target.insert_domain) {
    restored.host = target.aor_domain;
  } else {
    restored.host = target.original.host;
    if (target.original.port != 0) restored.port = target.original.port;
    if (target.original.transport != Transport::kUdp) {
      restored.params.emplace_back("transport",
                                   std::string(TransportName(target.original.transport)));
    }
  }
  return target;
}

}  // namespace pushgate::proxy
