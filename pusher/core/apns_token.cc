#include "pusher/core/apns_token.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pushgate::pusher {

bool IsAppleId(absl::string_view id) {
  if (id.size() != 10) return false;
  for (char c : id) {
    if (!absl::ascii_isdigit(c) && !absl::ascii_isupper(c)) return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<ApnsTokenSigner>> ApnsTokenSigner::Create(
    std::string team_id, std::string key_id, PKey key, absl::Duration refresh_age) {
  if (!IsAppleId(team_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("APNs team id '", team_id, "' must be 10 characters A-Z/0-9"));
  }
  if (!IsAppleId(key_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("APNs key id '", key_id, "' must be 10 characters A-Z/0-9"));
  }
  if (refresh_age < kMinRefreshAge || refresh_age > kMaxRefreshAge) {
    return absl::InvalidArgumentError(absl::StrCat(
        "APNs token refresh age ", absl::FormatDuration(refresh_age), " is outside [",
        absl::FormatDuration(kMinRefreshAge), ", ", absl::FormatDuration(kMaxRefreshAge), "]"));
  }
  // Sign once now to prove the key fits ES256 (a P-256 EC key).
  absl::StatusOr<std::string> probe = SignJwt(JwtAlg::kEs256, key, nullptr, nullptr);
  if (!probe.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("APNs key ", key_id, " cannot sign ES256: ", probe.status().message()));
  }
  return std::unique_ptr<ApnsTokenSigner>(
      new ApnsTokenSigner(std::move(team_id), std::move(key_id), std::move(key), refresh_age));
}

ApnsTokenSigner::ApnsTokenSigner(std::string team_id, std::string key_id, PKey key,
                                 absl::Duration refresh_age)
    : team_id_(std::move(team_id)),
      key_id_(std::move(key_id)),
      key_(std::move(key)),
      refresh_age_(refresh_age) {}

absl::StatusOr<std::string> ApnsTokenSigner::Token(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = RefreshLocked(now); !s.ok()) return s;
  return token_;
}

absl::StatusOr<std::string> ApnsTokenSigner::AuthorizationHeader(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = RefreshLocked(now); !s.ok()) return s;
  return header_;
}

absl::Status ApnsTokenSigner::RefreshLocked(absl::Time now) {
  absl::Duration age = now - issued_at_;
  bool stale = token_.empty() || age >= refresh_age_ || (invalidated_ && age >= kMinRefreshAge);
  if (!stale) return absl::OkStatus();
  int64_t iat = absl::ToUnixSeconds(now);
  absl::StatusOr<std::string> token =
      SignJwt(JwtAlg::kEs256, key_, {{"alg", "ES256"}, {"kid", key_id_}},
              {{"iss", team_id_}, {"iat", iat}});
  if (!token.ok()) return token.status();
  token_ = *std::move(token);
  header_ = absl::StrCat("bearer ", token_);
  // issued_at_ is the whole second put in "iat", so ages compare with what Apple sees.
  issued_at_ = absl::FromUnixSeconds(iat);
  invalidated_ = false;
  return absl::OkStatus();
}

absl::Time ApnsTokenSigner::Invalidate(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (token_.empty()) return now;
  invalidated_ = true;
  absl::Time earliest = issued_at_ + kMinRefreshAge;
  return earliest > now ? earliest : now;
}

absl::Time ApnsTokenSigner::issued_at() const {
  absl::MutexLock lock(&mu_);
  return issued_at_;
}

}  // namespace pushgate::pusher
