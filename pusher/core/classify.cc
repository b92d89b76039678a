#include "pusher/core/classify.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "pusher/core/validate.h"

namespace pushgate::pusher {
namespace {

using nlohmann::json;

json ParseBody(absl::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return json::object();
  return j;
}

std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::string HttpReason(int status) { return absl::StrCat("HTTP ", status); }

ProviderVerdict Retryable(ProviderVerdict v, absl::string_view retry_after_header, absl::Time now) {
  v.outcome = v1::RETRY_LATER;
  v.retryable = true;
  v.retry_after = ParseRetryAfter(retry_after_header, now);
  return v;
}

ProviderVerdict ClassifyApns(int status, absl::string_view body,
                             absl::string_view retry_after_header, absl::Time now) {
  ProviderVerdict v;
  if (status == 200) {
    v.outcome = v1::ACCEPTED;
    return v;
  }
  json j = ParseBody(body);
  v.reason = StringField(j, "reason");
  if (v.reason.empty()) v.reason = HttpReason(status);

  if (status == 410) {
    v.outcome = v1::TOKEN_INVALID;
    auto ts = j.find("timestamp");
    int64_t ms = 0;
    if (ts != j.end()) {
      if (ts->is_number_integer() || ts->is_number_unsigned()) {
        ms = ts->get<int64_t>();
      } else if (ts->is_number_float()) {
        // Only in int64 range: converting 1e308 is undefined behaviour (found by fuzzing).
        const double d = ts->get<double>();
        if (d > 0 && d < 9e18) ms = static_cast<int64_t>(d);
      } else if (ts->is_string() && !absl::SimpleAtoi(ts->get<std::string>(), &ms)) {
        ms = 0;
      }
    }
    if (ms > 0) v.token_invalid_since = absl::FromUnixMillis(ms);
    return v;
  }
  if (status == 400 && (v.reason == "BadDeviceToken" || v.reason == "DeviceTokenNotForTopic")) {
    v.outcome = v1::TOKEN_INVALID;
    return v;
  }
  if (status == 403) {
    v.outcome = v1::AUTH_FAILED;
    v.credential_problem = true;
    v.retryable = v.reason == "ExpiredProviderToken";
    return v;
  }
  if (status == 429 || (status >= 500 && status <= 599)) {
    return Retryable(std::move(v), retry_after_header, now);
  }
  v.outcome = v1::REJECTED;
  return v;
}

ProviderVerdict ClassifyFcm(int status, absl::string_view body,
                            absl::string_view retry_after_header, absl::Time now) {
  ProviderVerdict v;
  json j = ParseBody(body);
  if (status == 200) {
    v.outcome = v1::ACCEPTED;
    v.message_id = StringField(j, "name");
    return v;
  }
  std::string error_code;
  std::string error_status;
  auto err = j.find("error");
  if (err != j.end() && err->is_object()) {
    error_status = StringField(*err, "status");
    v.message = StringField(*err, "message");
    auto details = err->find("details");
    if (details != err->end() && details->is_array()) {
      for (const json& d : *details) {
        if (d.is_object() && !StringField(d, "errorCode").empty()) {
          error_code = StringField(d, "errorCode");
          break;
        }
      }
    }
  }
  v.reason = !error_code.empty()     ? error_code
             : !error_status.empty() ? error_status
                                     : HttpReason(status);

  if ((status == 404 || status == 400) && error_code == "UNREGISTERED") {
    v.outcome = v1::TOKEN_INVALID;
    return v;
  }
  if (status == 403 && error_code == "SENDER_ID_MISMATCH") {
    v.outcome = v1::TOKEN_INVALID;
    return v;
  }
  if (status == 401) {
    v.outcome = v1::AUTH_FAILED;
    if (error_code != "THIRD_PARTY_AUTH_ERROR") {
      v.credential_problem = true;
      v.retryable = true;
    }
    return v;
  }
  if (status == 403) {
    v.outcome = v1::AUTH_FAILED;
    v.credential_problem = true;
    return v;
  }
  if (status == 429) {
    v = Retryable(std::move(v), retry_after_header, now);
    if (!v.retry_after) v.retry_after = kFcmQuotaDefaultRetryAfter;
    return v;
  }
  if (status >= 500 && status <= 599) return Retryable(std::move(v), retry_after_header, now);
  v.outcome = v1::REJECTED;
  return v;
}

}  // namespace

std::optional<absl::Duration> ParseRetryAfter(absl::string_view header, absl::Time now) {
  header = absl::StripAsciiWhitespace(header);
  if (header.empty()) return std::nullopt;
  bool all_digits = true;
  for (char c : header) all_digits = all_digits && absl::ascii_isdigit(c);
  if (all_digits) {
    int64_t seconds = 0;
    if (header.size() > 9 || !absl::SimpleAtoi(header, &seconds)) return std::nullopt;
    return absl::Seconds(seconds);
  }
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850
      "%a %b %e %H:%M:%S %Y",       // asctime
  };
  for (const char* format : kFormats) {
    absl::Time when;
    std::string err;
    if (absl::ParseTime(format, std::string(header), absl::UTCTimeZone(), &when, &err)) {
      return when > now ? when - now : absl::ZeroDuration();
    }
  }
  return std::nullopt;
}

ProviderVerdict Classify(v1::Provider provider, int http_status, absl::string_view body,
                         absl::string_view retry_after_header, absl::Time now) {
  if (IsApns(provider)) return ClassifyApns(http_status, body, retry_after_header, now);
  return ClassifyFcm(http_status, body, retry_after_header, now);
}

}  // namespace pushgate::pusher
