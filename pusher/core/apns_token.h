// APNs provider-token (JWT) management for one signing key: reuse one token, refresh it between
// 20 and 60 minutes of age, and never faster than Apple tolerates. Pure: time is a parameter.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pusher/core/jwt.h"

namespace pushgate::pusher {

class ApnsTokenSigner final {
 public:
  // Apple answers 429 TooManyProviderTokenUpdates when a provider switches to a new token more
  // often than every 20 minutes, and 403 ExpiredProviderToken once a token is 60 minutes old.
  static constexpr absl::Duration kMinRefreshAge = absl::Minutes(20);
  static constexpr absl::Duration kMaxRefreshAge = absl::Minutes(55);
  static constexpr absl::Duration kDefaultRefreshAge = absl::Minutes(40);

  // `team_id` and `key_id` are Apple's 10-character identifiers; `key` is the .p8 P-256 key.
  // `refresh_age` must lie in [kMinRefreshAge, kMaxRefreshAge].
  static absl::StatusOr<std::unique_ptr<ApnsTokenSigner>> Create(
      std::string team_id, std::string key_id, PKey key,
      absl::Duration refresh_age = kDefaultRefreshAge);

  // The current provider token ("eyJ..."), for `authorization: bearer <token>`. Signed on first
  // use, reused afterwards, re-signed (iat = now) once older than the refresh age, or after
  // Invalidate() as soon as the 20-minute floor allows.
  absl::StatusOr<std::string> Token(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // "bearer <Token(now)>", the authorization header value, kept with the token so that a push
  // copies it once instead of building it.
  absl::StatusOr<std::string> AuthorizationHeader(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // Called after APNs refused the token (403 ExpiredProviderToken / InvalidProviderToken): the
  // next Token() signs a new one, but not before the current one is kMinRefreshAge old, because
  // a faster switch earns 429 TooManyProviderTokenUpdates and every request with the new token
  // is refused meanwhile. Returns when a new token will be handed out.
  absl::Time Invalidate(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // When the current token was signed (InfinitePast before the first).
  absl::Time issued_at() const ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& team_id() const { return team_id_; }
  const std::string& key_id() const { return key_id_; }
  absl::Duration refresh_age() const { return refresh_age_; }

 private:
  ApnsTokenSigner(std::string team_id, std::string key_id, PKey key, absl::Duration refresh_age);

  const std::string team_id_;
  const std::string key_id_;
  const PKey key_;
  const absl::Duration refresh_age_;

  mutable absl::Mutex mu_;
  // Signs a new token when the current one is stale (or there is none).
  absl::Status RefreshLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::string token_ ABSL_GUARDED_BY(mu_);
  std::string header_ ABSL_GUARDED_BY(mu_);  // "bearer " + token_
  absl::Time issued_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool invalidated_ ABSL_GUARDED_BY(mu_) = false;
};

// Whether `id` looks like an Apple team id or key id: 10 characters, A-Z or 0-9.
bool IsAppleId(absl::string_view id);

}  // namespace pushgate::pusher
