// Google OAuth2 token endpoint answers (ParseOAuthTokenResponse) and, from the same bytes, the
// service-account JSON the FCM adapter reads (ParseServiceAccountJson: JSON, then the RSA PEM).
// Input: bytes 0-1 the HTTP status (big-endian, modulo 600), the rest the body.
// Oracle: an accepted token is non-empty and does not expire before it was received.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pusher/core/fcm_auth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pushgate::pusher;  // NOLINT(google-build-using-namespace)
  if (size < 2) return 0;
  const int status = ((data[0] << 8) | data[1]) % 600;
  const absl::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  const absl::Time now = absl::FromUnixSeconds(1'780'000'000);

  const absl::StatusOr<AccessToken> token = ParseOAuthTokenResponse(status, body, now);
  if (token.ok() && (token->token.empty() || token->expires_at < now)) std::abort();
  (void)ParseServiceAccountJson(body);
  return 0;
}
