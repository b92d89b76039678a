// FCM HTTP v1 authentication, pure parts: the service-account file, the OAuth2 JWT-bearer
// assertion (RFC 7523), the token endpoint's answer, and the access-token cache decisions.
// The adapter does the HTTP POST and owns the timer; time is always a parameter here.
#pragma once

#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pusher/core/jwt.h"

namespace pushgate::pusher {

inline constexpr char kFcmScope[] = "https://www.googleapis.com/auth/firebase.messaging";
inline constexpr absl::Duration kOAuthAssertionLifetime = absl::Hours(1);

struct ServiceAccount {
  std::string type;            // "service_account"
  std::string project_id;      // Firebase project: the FCM pn-param
  std::string private_key_id;  // optional; sent as the assertion's "kid"
  std::string private_key;     // RSA private key PEM
  std::string client_email;    // the assertion's "iss"
  std::string token_uri;       // "https://oauth2.googleapis.com/token"
};

// Parses a Google service-account JSON file. INVALID_ARGUMENT naming the problem: not JSON,
// "missing field 'client_email'", "field 'type' is 'authorized_user', expected
// 'service_account'", or a private_key that is not an RSA PEM key.
absl::StatusOr<ServiceAccount> ParseServiceAccountJson(absl::string_view json_text);

// The RS256 assertion: header {alg RS256, typ JWT, kid = private_key_id when set}, claims
// {iss = client_email, scope = kFcmScope, aud = token_uri, iat = now, exp = iat + 3600}.
absl::StatusOr<std::string> BuildOAuthAssertion(const ServiceAccount& sa, absl::Time now);
// Same with the key already loaded (avoids re-parsing the PEM each hour).
absl::StatusOr<std::string> BuildOAuthAssertion(const ServiceAccount& sa, const PKey& key,
                                                absl::Time now);

// "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<jwt>"
// (application/x-www-form-urlencoded).
std::string OAuthTokenRequestBody(absl::string_view assertion);

// application/x-www-form-urlencoded encoding of one value (unreserved characters kept).
std::string FormUrlEncode(absl::string_view value);

struct AccessToken {
  std::string token;
  absl::Time expires_at;
};

// Reads the token endpoint's answer. 200 with {"access_token", "expires_in" (seconds; 3600 when
// absent, at most 86400 taken), "token_type" ("Bearer" when present)} -> the token, expiring at now
// + expires_in. Errors: UNAUTHENTICATED for a 4xx refusal (400/401/403: bad key, unknown account,
// clock skew; the message carries the OAuth "error" and "error_description"), UNAVAILABLE for
// 429/5xx and for answers that cannot be read (retry with backoff).
absl::StatusOr<AccessToken> ParseOAuthTokenResponse(int http_status, absl::string_view body,
                                                    absl::Time now);

// Decisions about one FCM access token. The adapter asks NeedsRefresh() (on a timer and before
// sends), calls RefreshStarted(), POSTs the assertion, then Set() or RefreshFailed(). Sends use
// Current() meanwhile, so a refresh never blocks them while the old token is still good.
// Thread-safe.
class AccessTokenCache final {
 public:
  struct Options {
    // Current() stops handing out a token this long before it expires.
    absl::Duration safety_margin = absl::Seconds(60);
    // NeedsRefresh() turns true this long before expiry.
    absl::Duration refresh_ahead = absl::Minutes(5);
    // Backoff after failed refreshes: initial * 2^(failures-1), capped.
    absl::Duration initial_backoff = absl::Seconds(1);
    absl::Duration max_backoff = absl::Seconds(60);
  };

  AccessTokenCache();
  explicit AccessTokenCache(Options options);

  // The token if it stays valid beyond now + safety_margin, else nullopt.
  std::optional<std::string> Current(absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_);

  // True when a refresh should start now: no token or within refresh_ahead of expiry, no
  // refresh in flight, and any failure backoff has elapsed.
  bool NeedsRefresh(absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_);

  // When NeedsRefresh() will next be true (now or in the past when it already is; InfiniteFuture
  // while a refresh is in flight). For the adapter's timer.
  absl::Time NextRefreshAt() const ABSL_LOCKS_EXCLUDED(mu_);

  // Marks a refresh in flight (NeedsRefresh() turns false until Set/RefreshFailed). Returns
  // false when one already was, so exactly one caller refreshes.
  bool RefreshStarted() ABSL_LOCKS_EXCLUDED(mu_);

  // Stores a fresh token; clears the in-flight mark and the failure count.
  void Set(AccessToken token) ABSL_LOCKS_EXCLUDED(mu_);

  // Records a failed refresh: the next one waits for the backoff. Keeps the old token (it may
  // still be usable).
  void RefreshFailed(absl::Time now, absl::Status error) ABSL_LOCKS_EXCLUDED(mu_);

  // Forgets the token (after the provider refused it with 401): the next NeedsRefresh() is true
  // unless a backoff is running.
  void Invalidate() ABSL_LOCKS_EXCLUDED(mu_);

  int consecutive_failures() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status last_error() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Time NextRefreshAtLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::optional<AccessToken> token_ ABSL_GUARDED_BY(mu_);
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time retry_not_before_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pushgate::pusher
