#include "pusher/core/fcm_auth.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace pushgate::pusher {
namespace {

constexpr double kMaxAccessTokenLifetimeSeconds = 24 * 3600;

using nlohmann::json;

absl::Status RequireString(const json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service account JSON: missing field '", key, "'"));
  }
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service account JSON: field '", key, "' must be a non-empty string"));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServiceAccount> ParseServiceAccountJson(absl::string_view json_text) {
  json j = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("service account file is not JSON");
  if (!j.is_object()) {
    return absl::InvalidArgumentError("service account JSON is not an object");
  }
  ServiceAccount sa;
  for (auto [key, target] : {std::pair<const char*, std::string*>{"type", &sa.type},
                             {"project_id", &sa.project_id},
                             {"private_key", &sa.private_key},
                             {"client_email", &sa.client_email},
                             {"token_uri", &sa.token_uri}}) {
    absl::Status s = RequireString(j, key, target);
    if (!s.ok()) return s;
  }
  if (sa.type != "service_account") {
    return absl::InvalidArgumentError(absl::StrCat("service account JSON: field 'type' is '",
                                                   sa.type, "', expected 'service_account'"));
  }
  auto kid = j.find("private_key_id");
  if (kid != j.end() && kid->is_string()) sa.private_key_id = kid->get<std::string>();
  absl::StatusOr<PKey> key = LoadPrivateKeyPem(sa.private_key);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service account JSON: field 'private_key': ", key.status().message()));
  }
  if (EVP_PKEY_get_base_id(key->get()) != EVP_PKEY_RSA) {
    return absl::InvalidArgumentError(
        "service account JSON: field 'private_key' is not an RSA key");
  }
  return sa;
}

absl::StatusOr<std::string> BuildOAuthAssertion(const ServiceAccount& sa, absl::Time now) {
  absl::StatusOr<PKey> key = LoadPrivateKeyPem(sa.private_key);
  if (!key.ok()) return key.status();
  return BuildOAuthAssertion(sa, *key, now);
}

absl::StatusOr<std::string> BuildOAuthAssertion(const ServiceAccount& sa, const PKey& key,
                                                absl::Time now) {
  json header = json::object();
  if (!sa.private_key_id.empty()) header["kid"] = sa.private_key_id;
  int64_t iat = absl::ToUnixSeconds(now);
  json claims = {
      {"iss", sa.client_email},
      {"scope", kFcmScope},
      {"aud", sa.token_uri},
      {"iat", iat},
      {"exp", iat + absl::ToInt64Seconds(kOAuthAssertionLifetime)},
  };
  return SignJwt(JwtAlg::kRs256, key, std::move(header), claims);
}

std::string FormUrlEncode(absl::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string OAuthTokenRequestBody(absl::string_view assertion) {
  return absl::StrCat("grant_type=", FormUrlEncode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
                      "&assertion=", FormUrlEncode(assertion));
}

absl::StatusOr<AccessToken> ParseOAuthTokenResponse(int http_status, absl::string_view body,
                                                    absl::Time now) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  bool is_object = !j.is_discarded() && j.is_object();
  if (http_status != 200) {
    std::string detail;
    if (is_object) {
      auto err = j.find("error");
      if (err != j.end() && err->is_string()) detail = err->get<std::string>();
      auto desc = j.find("error_description");
      if (desc != j.end() && desc->is_string()) {
        absl::StrAppend(&detail, detail.empty() ? "" : ": ", desc->get<std::string>());
      }
    }
    if (detail.empty()) detail = "no OAuth error in the body";
    std::string msg = absl::StrCat("token endpoint answered HTTP ", http_status, ": ", detail);
    if (http_status == 429 || http_status >= 500) return absl::UnavailableError(msg);
    if (http_status >= 400) return absl::UnauthenticatedError(msg);
    return absl::UnavailableError(msg);
  }
  if (!is_object) return absl::UnavailableError("token endpoint answered 200 without JSON");
  auto tok = j.find("access_token");
  if (tok == j.end() || !tok->is_string() || tok->get_ref<const std::string&>().empty()) {
    return absl::UnavailableError("token endpoint answered 200 without 'access_token'");
  }
  auto type = j.find("token_type");
  if (type != j.end() &&
      (!type->is_string() || !absl::EqualsIgnoreCase(type->get<std::string>(), "bearer"))) {
    return absl::UnavailableError(absl::StrCat(
        "token endpoint answered token_type ",
        type->dump(-1, ' ', false, json::error_handler_t::replace), ", expected \"Bearer\""));
  }
  absl::Duration lifetime = absl::Hours(1);
  auto exp = j.find("expires_in");
  if (exp != j.end()) {
    if (!exp->is_number() || exp->get<double>() <= 0 || !std::isfinite(exp->get<double>())) {
      return absl::UnavailableError("token endpoint answered an invalid 'expires_in'");
    }
    // At most a day (Google grants an hour): a huge value (1e300) would not fit an int64.
    lifetime = absl::Seconds(std::min(exp->get<double>(), kMaxAccessTokenLifetimeSeconds));
  }
  return AccessToken{tok->get<std::string>(), now + lifetime};
}

AccessTokenCache::AccessTokenCache() : AccessTokenCache(Options()) {}
AccessTokenCache::AccessTokenCache(Options options) : options_(options) {}

std::optional<std::string> AccessTokenCache::Current(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  if (!token_ || now + options_.safety_margin >= token_->expires_at) return std::nullopt;
  return token_->token;
}

absl::Time AccessTokenCache::NextRefreshAtLocked() const {
  if (in_flight_) return absl::InfiniteFuture();
  absl::Time due = token_ ? token_->expires_at - options_.refresh_ahead : absl::InfinitePast();
  return std::max(due, retry_not_before_);
}

bool AccessTokenCache::NeedsRefresh(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  return NextRefreshAtLocked() <= now;
}

absl::Time AccessTokenCache::NextRefreshAt() const {
  absl::MutexLock lock(&mu_);
  return NextRefreshAtLocked();
}

bool AccessTokenCache::RefreshStarted() {
  absl::MutexLock lock(&mu_);
  if (in_flight_) return false;
  in_flight_ = true;
  return true;
}

void AccessTokenCache::Set(AccessToken token) {
  absl::MutexLock lock(&mu_);
  token_ = std::move(token);
  in_flight_ = false;
  failures_ = 0;
  retry_not_before_ = absl::InfinitePast();
  last_error_ = absl::OkStatus();
}

void AccessTokenCache::RefreshFailed(absl::Time now, absl::Status error) {
  absl::MutexLock lock(&mu_);
  in_flight_ = false;
  ++failures_;
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 1; i < failures_ && backoff < options_.max_backoff; ++i) backoff *= 2;
  retry_not_before_ = now + std::min(backoff, options_.max_backoff);
  last_error_ = std::move(error);
}

void AccessTokenCache::Invalidate() {
  absl::MutexLock lock(&mu_);
  token_.reset();
}

int AccessTokenCache::consecutive_failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

absl::Status AccessTokenCache::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

}  // namespace pushgate::pusher
