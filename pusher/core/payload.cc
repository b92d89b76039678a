#include "pusher/core/payload.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "pusher/core/validate.h"

namespace pushgate::pusher {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

constexpr char kPayloadTooLargeUrl[] = "type.pushgate.dev/pushgate.PayloadTooLarge";

absl::Status TooLarge(size_t size, size_t limit) {
  absl::Status s =
      absl::InvalidArgumentError(absl::StrCat("payload is ", size, " bytes, limit ", limit));
  s.SetPayload(kPayloadTooLargeUrl, absl::Cord("PayloadTooLarge"));
  return s;
}

absl::Duration TimeToLive(const v1::PushRequest& request) {
  if (!request.has_time_to_live()) return absl::ZeroDuration();
  return absl::Seconds(request.time_to_live().seconds()) +
         absl::Nanoseconds(request.time_to_live().nanos());
}

// Call fields, then the data map; a data key may not overwrite a call field.
absl::Status AddCustomFields(const v1::PushRequest& request, json* out) {
  if (!request.call_id().empty()) (*out)[kCallIdKey] = request.call_id();
  if (!request.caller_uri().empty()) (*out)[kCallerUriKey] = request.caller_uri();
  if (!request.caller_display_name().empty()) {
    (*out)[kCallerNameKey] = request.caller_display_name();
  }
  for (const auto& [key, value] : request.data()) {
    if (out->contains(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("data: key '", key, "' collides with a field the request already sets"));
    }
    (*out)[key] = value;
  }
  return absl::OkStatus();
}

bool HighPriority(const v1::PushRequest& request) {
  switch (request.priority()) {
    case v1::PRIORITY_HIGH:
      return true;
    case v1::PRIORITY_NORMAL:
      return false;
    default:
      return request.kind() == v1::VOIP || request.kind() == v1::ALERT;
  }
}

// "30s", "1.500s" (protobuf Duration JSON form).
std::string FcmTtl(const v1::PushRequest& request) {
  int64_t seconds = request.has_time_to_live() ? request.time_to_live().seconds() : 0;
  int32_t nanos = request.has_time_to_live() ? request.time_to_live().nanos() : 0;
  if (nanos <= 0) return absl::StrCat(seconds, "s");
  char frac[16];
  std::snprintf(frac, sizeof(frac), "%09d", nanos);
  std::string f = frac;
  while (!f.empty() && f.back() == '0') f.pop_back();
  return absl::StrCat(seconds, ".", f, "s");
}

}  // namespace

bool IsPayloadTooLarge(const absl::Status& status) {
  return status.GetPayload(kPayloadTooLargeUrl).has_value();
}

absl::StatusOr<HttpRequestSpec> BuildApnsRequest(const v1::PushRequest& request,
                                                 const ApnsTopic& topic, absl::Time now) {
  const v1::PushKind kind = request.kind();
  absl::string_view push_type;
  switch (kind) {
    case v1::VOIP:
      push_type = "voip";
      break;
    case v1::ALERT:
      push_type = "alert";
      break;
    case v1::BACKGROUND:
      push_type = "background";
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("kind: ", v1::PushKind_Name(kind), " cannot be sent through APNs"));
  }
  bool high = kind != v1::BACKGROUND && HighPriority(request);

  json body = json::object();
  json aps = json::object();
  if (kind == v1::ALERT) {
    json alert = json::object();
    if (!request.loc_key().empty()) {
      alert["loc-key"] = request.loc_key();
      const std::string& caller = request.caller_display_name().empty()
                                      ? request.caller_uri()
                                      : request.caller_display_name();
      if (!caller.empty()) alert["loc-args"] = json::array({caller});
    } else if (!request.alert_body().empty()) {
      alert["body"] = request.alert_body();
    }
    if (!request.alert_title().empty()) alert["title"] = request.alert_title();
    aps["alert"] = std::move(alert);
    if (!request.sound().empty()) aps["sound"] = request.sound();
    if (request.badge() >= 0) aps["badge"] = request.badge();
  } else if (kind == v1::BACKGROUND) {
    aps["content-available"] = 1;
  }
  body["aps"] = std::move(aps);
  absl::Status custom = AddCustomFields(request, &body);
  if (!custom.ok()) return custom;

  HttpRequestSpec spec;
  spec.method = "POST";
  spec.path = absl::StrCat("/3/device/", request.destination().device_token());
  spec.body = Dump(body);
  size_t limit = kind == v1::VOIP ? kApnsVoipPayloadLimit : kApnsPayloadLimit;
  if (spec.body.size() > limit) return TooLarge(spec.body.size(), limit);

  absl::Duration ttl = TimeToLive(request);
  int64_t expiration = ttl <= absl::ZeroDuration() ? 0 : absl::ToUnixSeconds(now + ttl);
  spec.headers = {
      {"apns-push-type", std::string(push_type)},
      {"apns-topic", ApnsTopicFor(topic, kind)},
      {"apns-priority", high ? "10" : "5"},
      {"apns-expiration", absl::StrCat(expiration)},
  };
  if (!request.collapse_id().empty()) {
    spec.headers.emplace_back("apns-collapse-id", request.collapse_id());
  }
  if (!request.request_id().empty()) {
    spec.headers.emplace_back("apns-id", absl::AsciiStrToLower(request.request_id()));
  }
  return spec;
}

absl::StatusOr<HttpRequestSpec> BuildFcmRequest(const v1::PushRequest& request,
                                                absl::string_view project_id) {
  json data = json::object();
  absl::Status custom = AddCustomFields(request, &data);
  if (!custom.ok()) return custom;

  size_t payload_bytes = 0;
  for (const auto& [key, value] : data.items()) {
    payload_bytes += key.size() + value.get_ref<const std::string&>().size();
  }

  json android = json::object();
  android["priority"] = HighPriority(request) ? "high" : "normal";
  android["ttl"] = FcmTtl(request);
  if (!request.collapse_id().empty()) android["collapse_key"] = request.collapse_id();

  json message = json::object();
  message["token"] = request.destination().device_token();
  if (!data.empty()) message["data"] = std::move(data);
  if (request.kind() == v1::ALERT) {
    json notification = json::object();
    if (!request.alert_title().empty()) notification["title"] = request.alert_title();
    if (!request.alert_body().empty()) notification["body"] = request.alert_body();
    payload_bytes += request.alert_title().size() + request.alert_body().size();
    if (!notification.empty()) message["notification"] = std::move(notification);
    json android_notification = json::object();
    if (!request.loc_key().empty()) android_notification["body_loc_key"] = request.loc_key();
    if (!request.sound().empty()) android_notification["sound"] = request.sound();
    if (request.badge() >= 0) android_notification["notification_count"] = request.badge();
    payload_bytes += request.loc_key().size() + request.sound().size();
    if (!android_notification.empty()) android["notification"] = std::move(android_notification);
  }
  message["android"] = std::move(android);
  if (payload_bytes > kFcmPayloadLimit) return TooLarge(payload_bytes, kFcmPayloadLimit);

  HttpRequestSpec spec;
  spec.method = "POST";
  spec.path = absl::StrCat("/v1/projects/", project_id, "/messages:send");
  spec.headers = {{"content-type", "application/json"}};
  spec.body = Dump(json{{"message", std::move(message)}});
  return spec;
}

}  // namespace pushgate::pusher
