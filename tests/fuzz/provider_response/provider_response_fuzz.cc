// APNs and FCM answers as the provider adapters hand them to the core: the HTTP status, the
// Retry-After header and the body go through Classify (which parses the JSON body) and the
// Retry-After header through ParseRetryAfter.
// Input: byte 0 picks the provider (APNs, APNs sandbox, FCM), bytes 1-2 the HTTP status
// (big-endian, modulo 600), then the Retry-After header up to the first '\n', then the body.
// Oracle: a retry delay (parsed or in the verdict) is never negative.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pusher/core/classify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pushgate;  // NOLINT(google-build-using-namespace)
  if (size < 3) return 0;
  static constexpr v1::Provider kProviders[] = {v1::APNS, v1::APNS_SANDBOX, v1::FCM};
  const v1::Provider provider = kProviders[data[0] % 3];
  const int status = ((data[1] << 8) | data[2]) % 600;
  absl::string_view rest(reinterpret_cast<const char*>(data + 3), size - 3);
  absl::string_view retry_after;
  if (const size_t nl = rest.find('\n'); nl != absl::string_view::npos) {
    retry_after = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
  }
  const absl::Time now = absl::FromUnixSeconds(1'780'000'000);

  const std::optional<absl::Duration> delay = pusher::ParseRetryAfter(retry_after, now);
  if (delay && *delay < absl::ZeroDuration()) std::abort();
  const pusher::ProviderVerdict verdict =
      pusher::Classify(provider, status, rest, retry_after, now);
  if (verdict.retry_after && *verdict.retry_after < absl::ZeroDuration()) std::abort();
  return 0;
}
