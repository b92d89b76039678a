// Maps a provider's HTTP answer to a push outcome (PROTOCOLS.md tables). Pure.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

// Default delay after FCM 429 QUOTA_EXCEEDED without Retry-After (FCM asks for >= 1 minute).
inline constexpr absl::Duration kFcmQuotaDefaultRetryAfter = absl::Seconds(60);

struct ProviderVerdict {
  // The outcome to report. For retryable verdicts it is the outcome once retries are exhausted
  // (RETRY_LATER, or AUTH_FAILED for an expired credential).
  v1::Outcome outcome = v1::OUTCOME_UNSPECIFIED;
  // Provider reason: APNs "reason", FCM details[].errorCode or else error.status; "HTTP <n>"
  // when the body says nothing usable. Empty when accepted.
  std::string reason;
  // Provider's human text when it gave one (FCM error.message), for logs.
  std::string message;
  // FCM message name ("projects/p/messages/123") on success; APNs returns apns-id as a header,
  // which the caller reads.
  std::string message_id;
  bool retryable = false;
  std::optional<absl::Duration> retry_after;      // from Retry-After (or FCM's 60 s quota default)
  std::optional<absl::Time> token_invalid_since;  // APNs 410 "timestamp" (ms since epoch)
  // Our credential was refused: invalidate the APNs token / FCM access token and mark the
  // credential unhealthy.
  bool credential_problem = false;
};

// APNs (APNS and APNS_SANDBOX):
//   200                                        ACCEPTED
//   410 Unregistered/ExpiredToken/any          TOKEN_INVALID, token_invalid_since from timestamp
//   400 BadDeviceToken, DeviceTokenNotForTopic TOKEN_INVALID (never retried)
//   403 ExpiredProviderToken                   AUTH_FAILED, credential_problem, retryable (a
//                                              fresh token may be signed at once)
//   403 any other (InvalidProviderToken, BadCertificate, BadCertificateEnvironment,
//       MissingProviderToken, Forbidden, ...)  AUTH_FAILED, credential_problem
//   413, 400 others, 404, 405, other 4xx       REJECTED
//   429 (TooManyRequests, TooManyProviderTokenUpdates), 5xx   RETRY_LATER, retryable
// FCM:
//   200                                        ACCEPTED, message_id = "name"
//   404 UNREGISTERED, 400 with errorCode UNREGISTERED   TOKEN_INVALID
//   403 SENDER_ID_MISMATCH                     TOKEN_INVALID: the token belongs to another
//       Firebase project, so it can never reach this app through this project; the binding is
//       dead for this destination. (If every token of an app fails this way the service account
//       is for the wrong project; phones re-register their tokens, so the damage heals.)
//   401 THIRD_PARTY_AUTH_ERROR                 AUTH_FAILED, not our credential (the APNs/web
//       key uploaded to Firebase was refused), not retried
//   401 other (our access token refused)       AUTH_FAILED, credential_problem, retryable
//   403 other (PERMISSION_DENIED)              AUTH_FAILED, credential_problem
//   429 QUOTA_EXCEEDED / any 429               RETRY_LATER, retryable, retry_after =
//                                              Retry-After or 60 s
//   5xx (INTERNAL, UNAVAILABLE)                RETRY_LATER, retryable
//   400 others, 404 others, other 4xx          REJECTED
// Any other status (1xx, 3xx, 2xx other than 200) is REJECTED with reason "HTTP <n>".
ProviderVerdict Classify(v1::Provider provider, int http_status, absl::string_view body,
                         absl::string_view retry_after_header, absl::Time now);

// Retry-After (RFC 9110): delta-seconds or an HTTP-date (IMF-fixdate, RFC 850, asctime).
// nullopt when absent or unparseable; a date in the past gives zero.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view header, absl::Time now);

}  // namespace pushgate::pusher
