#include "pusher/core/validate.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "pusher/core/topic.h"

namespace pushgate::pusher {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

bool IsHex(char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); }

absl::Status ValidateApnsToken(absl::string_view token) {
  for (size_t i = 0; i < token.size(); ++i) {
    if (!IsHex(token[i])) {
      return Invalid("destination.device_token",
                     absl::StrCat("APNs tokens are hexadecimal; character at offset ", i,
                                  " is not a hex digit"));
    }
  }
  if (token.size() % 2 != 0 || token.size() < kMinApnsTokenHexChars ||
      token.size() > kMaxApnsTokenHexChars) {
    return Invalid(
        "destination.device_token",
        absl::StrCat("APNs token has ", token.size(),
                     " hex characters; expected an even count in [", kMinApnsTokenHexChars, ", ",
                     kMaxApnsTokenHexChars, "] (64 today)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateFcmToken(absl::string_view token) {
  if (token.size() > kMaxFcmTokenBytes) {
    return Invalid("destination.device_token", absl::StrCat("FCM token is ", token.size(),
                                                            " bytes, at most ", kMaxFcmTokenBytes));
  }
  for (size_t i = 0; i < token.size(); ++i) {
    auto c = static_cast<unsigned char>(token[i]);
    if (c <= 0x20 || c == 0x7f) {
      return Invalid(
          "destination.device_token",
          absl::StrCat("FCM token holds whitespace or a control character at offset ", i));
    }
  }
  return absl::OkStatus();
}

bool IsReservedDataKey(v1::Provider provider, absl::string_view key) {
  if (IsApns(provider)) return key == "aps";
  return key == "from" || key == "notification" || key == "message_type" ||
         absl::StartsWith(key, "google.") || absl::StartsWith(key, "gcm.") || key == "google" ||
         key == "gcm";
}

}  // namespace

bool IsApns(v1::Provider provider) { return provider == v1::APNS || provider == v1::APNS_SANDBOX; }

bool IsUuid(absl::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return false;
    } else if (!IsHex(text[i])) {
      return false;
    }
  }
  return true;
}

namespace {

// The provider, the app (pn-param) and the device token.
absl::Status ValidateDestination(const v1::Destination& dest) {
  const v1::Provider provider = dest.provider();
  if (provider == v1::PROVIDER_UNSPECIFIED) {
    return Invalid("destination.provider", "is unspecified (APNS, APNS_SANDBOX or FCM)");
  }
  if (!v1::Provider_IsValid(provider)) {
    return Invalid("destination.provider", absl::StrCat("unknown value ", provider));
  }
  const bool apns = IsApns(provider);

  if (dest.app().empty()) {
    return Invalid("destination.app",
                   apns ? "is empty (the pn-param \"<TeamID>.<bundle-id>[.voip]\")"
                        : "is empty (the pn-param: the Firebase project id)");
  }
  if (dest.app().size() > kMaxAppBytes) {
    return Invalid("destination.app",
                   absl::StrCat("is ", dest.app().size(), " bytes, at most ", kMaxAppBytes));
  }
  absl::Status app_status =
      apns ? ParseApnsPnParamCached(dest.app()).status() : ParseFcmPnParam(dest.app()).status();
  if (!app_status.ok()) return Invalid("destination.app", app_status.message());

  if (dest.device_token().empty()) return Invalid("destination.device_token", "is empty");
  return apns ? ValidateApnsToken(dest.device_token()) : ValidateFcmToken(dest.device_token());
}

// The kind and priority, and what the provider allows of them.
absl::Status ValidateKind(const v1::PushRequest& request, bool apns) {
  const v1::PushKind kind = request.kind();
  if (kind == v1::PUSH_KIND_UNSPECIFIED) {
    return Invalid("kind", "is unspecified (VOIP, ALERT, BACKGROUND or DATA)");
  }
  if (!v1::PushKind_IsValid(kind)) return Invalid("kind", absl::StrCat("unknown value ", kind));
  if (!v1::Priority_IsValid(request.priority())) {
    return Invalid("priority", absl::StrCat("unknown value ", request.priority()));
  }
  if (apns && kind == v1::DATA) {
    return Invalid("kind", "DATA pushes exist on FCM only; use BACKGROUND for APNs");
  }
  if (apns && kind == v1::BACKGROUND && request.priority() == v1::PRIORITY_HIGH) {
    return Invalid("priority", "APNs requires priority 5 for BACKGROUND pushes, not HIGH");
  }
  if (kind == v1::ALERT && request.loc_key().empty() && request.alert_title().empty() &&
      request.alert_body().empty()) {
    return Invalid("kind", "ALERT pushes need loc_key, alert_title or alert_body");
  }
  return absl::OkStatus();
}

// collapse_id, time_to_live and request_id.
absl::Status ValidateDelivery(const v1::PushRequest& request, bool apns) {
  if (request.collapse_id().size() > kMaxCollapseIdBytes) {
    return Invalid("collapse_id", absl::StrCat("is ", request.collapse_id().size(),
                                               " bytes, at most ", kMaxCollapseIdBytes));
  }
  if (request.has_time_to_live()) {
    const auto& ttl = request.time_to_live();
    if (ttl.seconds() < 0 || ttl.nanos() < 0) return Invalid("time_to_live", "is negative");
    if (ttl.seconds() > kMaxTimeToLiveSeconds) {
      return Invalid("time_to_live", absl::StrCat("is ", ttl.seconds(), "s, at most ",
                                                  kMaxTimeToLiveSeconds, "s (28 days)"));
    }
  }

  const std::string& id = request.request_id();
  if (id.size() > kMaxRequestIdBytes) {
    return Invalid("request_id",
                   absl::StrCat("is ", id.size(), " bytes, at most ", kMaxRequestIdBytes));
  }
  if (apns && !id.empty() && !IsUuid(id)) {
    return Invalid("request_id",
                   "must be a UUID (8-4-4-4-12 hex digits) for APNs: it is sent as apns-id");
  }
  return absl::OkStatus();
}

// The data map: keys, reserved keys, total size.
absl::Status ValidateData(const v1::PushRequest& request) {
  const v1::Provider provider = request.destination().provider();
  const bool apns = IsApns(provider);
  size_t data_bytes = 0;
  for (const auto& [key, value] : request.data()) {
    if (key.empty()) return Invalid("data", "has an empty key");
    if (IsReservedDataKey(provider, key)) {
      return Invalid("data",
                     absl::StrCat("key '", key, "' is reserved by ", apns ? "APNs" : "FCM"));
    }
    data_bytes += key.size() + value.size();
  }
  if (data_bytes > kMaxDataBytes) {
    return Invalid("data", absl::StrCat("keys and values total ", data_bytes, " bytes, at most ",
                                        kMaxDataBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRequest(const v1::PushRequest& request) {
  RETURN_IF_ERROR(ValidateDestination(request.destination()));
  const bool apns = IsApns(request.destination().provider());
  RETURN_IF_ERROR(ValidateKind(request, apns));
  RETURN_IF_ERROR(ValidateDelivery(request, apns));
  return ValidateData(request);
}

}  // namespace pushgate::pusher
