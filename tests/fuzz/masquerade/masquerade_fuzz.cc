// Masquerade value decoding (MasqueradeCodec::Restore and the byte codec under it). The first
// byte picks the shape of the input:
//   0: the bytes are a whole request URI (ParseUri, then Restore);
//   1: the bytes are the raw `pgw` parameter value of a fixed URI;
//   2: the bytes are a payload the harness signs with the codec's secret (HMAC-SHA256, 12-byte
//      tag over the codec's context string and the payload), so the decoder behind the
//      authentication check is reached too.
// Oracles: a value signed with the secret never fails authentication; the base64url codec
// round-trips.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "proxy/core/byte_codec.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/sip_uri.h"

namespace {

constexpr absl::string_view kSecret = "fuzz-secret-0123456789";
constexpr size_t kTagSize = 12;
// The codec's domain separation: the tag is HMAC-SHA256(secret, context | payload).
constexpr absl::string_view kContext = "pushgate-masquerade-v1";

std::string Sign(absl::string_view payload) {
  const std::string signed_bytes = absl::StrCat(kContext, payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(signed_bytes.data()), signed_bytes.size(), mac, &len);
  return std::string(payload) + std::string(reinterpret_cast<const char*>(mac), kTagSize);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pushgate::proxy;  // NOLINT(google-build-using-namespace)
  static const MasqueradeCodec codec(std::string(kSecret), {"previous-secret"});
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 3;
  const absl::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  // The byte codec round-trips whatever it is given.
  const std::string encoded = bytes::Base64UrlEncode(text);
  const std::optional<std::string> decoded = bytes::Base64UrlDecode(encoded);
  if (!decoded || *decoded != text) std::abort();
  (void)bytes::Base64UrlDecode(text);

  Uri uri;
  uri.user = "alice";
  uri.host = "gw.example.org";
  switch (mode) {
    case 0: {
      absl::StatusOr<Uri> parsed = ParseUri(text);
      if (!parsed.ok()) return 0;
      uri = *std::move(parsed);
      break;
    }
    case 1:
      uri.params.emplace_back(std::string(kMasqueradeParam), std::string(text));
      break;
    default:
      uri.params.emplace_back(std::string(kMasqueradeParam), bytes::Base64UrlEncode(Sign(text)));
      break;
  }
  const absl::StatusOr<MasqueradeTarget> target = codec.Restore(uri);
  if (mode == 2 && text.size() >= 2 &&
      target.status().code() == absl::StatusCode::kPermissionDenied) {
    std::abort();  // signed with the secret, yet refused
  }
  if (target.ok()) (void)FormatUri(target->restored);
  return 0;
}
