#include "pusher/core/payload.h"

#include <algorithm>
#include <cstdio>

#include "absl/container/inlined_vector.h"
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

// --- APNs body without a DOM ----------------------------------------------------------------
// The body's shape is fixed; building an nlohmann tree (a std::map node and a string copy per
// field) then dumping it cost about a tenth of the pusher's CPU per push. The writer below emits
// byte for byte what the DOM path (ApnsBodyWithDom) dumps: keys sorted as std::map sorts them,
// strings escaped as nlohmann escapes them (ensure_ascii off). Input that is not well-formed
// UTF-8 takes the DOM path, whose error handler replaces the bad bytes.

// Whether `s` is well-formed UTF-8 (Unicode table 3-7: no overlong forms, no surrogates,
// nothing above U+10FFFF), which is exactly what nlohmann's decoder accepts.
bool IsWellFormedUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    auto cont = [](unsigned char b) { return (b & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF) {
      if (end - p < 2 || !cont(p[1])) return false;
      p += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (end - p < 3 || !cont(p[1]) || !cont(p[2])) return false;
      if (c == 0xE0 && p[1] < 0xA0) return false;  // overlong
      if (c == 0xED && p[1] > 0x9F) return false;  // surrogate
      p += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (end - p < 4 || !cont(p[1]) || !cont(p[2]) || !cont(p[3])) return false;
      if (c == 0xF0 && p[1] < 0x90) return false;  // overlong
      if (c == 0xF4 && p[1] > 0x8F) return false;  // above U+10FFFF
      p += 4;
    } else {
      return false;
    }
  }
  return true;
}

// Appends `s` as a JSON string literal, escaped like nlohmann's dump(ensure_ascii = false).
void AppendJsonString(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(u, sizeof(u));
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

// One member of a JSON object being written: a string value, or a JSON text written as is.
struct Member {
  absl::string_view key;
  absl::string_view value;
  bool raw = false;
};

// Writes {members...} with the keys in std::map order (what the DOM dumps).
void AppendObject(absl::InlinedVector<Member, 8>& members, std::string* out) {
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) { return a.key < b.key; });
  out->push_back('{');
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(members[i].key, out);
    out->push_back(':');
    if (members[i].raw) {
      out->append(members[i].value.data(), members[i].value.size());
    } else {
      AppendJsonString(members[i].value, out);
    }
  }
  out->push_back('}');
}

// The "aps" dictionary; strings come from the request.
std::string ApsJson(const v1::PushRequest& request) {
  switch (request.kind()) {
    case v1::BACKGROUND:
      return R"({"content-available":1})";
    case v1::ALERT:
      break;
    default:
      return "{}";
  }
  std::string alert;
  {
    absl::InlinedVector<Member, 8> m;
    std::string loc_args;
    if (!request.loc_key().empty()) {
      m.push_back({"loc-key", request.loc_key()});
      const std::string& caller = request.caller_display_name().empty()
                                      ? request.caller_uri()
                                      : request.caller_display_name();
      if (!caller.empty()) {
        loc_args.push_back('[');
        AppendJsonString(caller, &loc_args);
        loc_args.push_back(']');
        m.push_back({"loc-args", loc_args, true});
      }
    } else if (!request.alert_body().empty()) {
      m.push_back({"body", request.alert_body()});
    }
    if (!request.alert_title().empty()) m.push_back({"title", request.alert_title()});
    AppendObject(m, &alert);
  }
  absl::InlinedVector<Member, 8> m;
  m.push_back({"alert", alert, true});
  std::string badge;
  if (!request.sound().empty()) m.push_back({"sound", request.sound()});
  if (request.badge() >= 0) {
    badge = absl::StrCat(request.badge());
    m.push_back({"badge", badge, true});
  }
  std::string out;
  AppendObject(m, &out);
  return out;
}

// Every string of the request that reaches the body is well-formed UTF-8.
bool ApnsBodyStringsValid(const v1::PushRequest& request) {
  for (const std::string* s :
       {&request.call_id(), &request.caller_uri(), &request.caller_display_name()}) {
    if (!IsWellFormedUtf8(*s)) return false;
  }
  if (request.kind() == v1::ALERT) {
    for (const std::string* s :
         {&request.loc_key(), &request.alert_body(), &request.alert_title(), &request.sound()}) {
      if (!IsWellFormedUtf8(*s)) return false;
    }
  }
  for (const auto& [key, value] : request.data()) {
    if (!IsWellFormedUtf8(key) || !IsWellFormedUtf8(value)) return false;
  }
  return true;
}

absl::Status Collision(absl::string_view key) {
  return absl::InvalidArgumentError(
      absl::StrCat("data: key '", key, "' collides with a field the request already sets"));
}

// The body as the DOM path builds it, without the DOM. Same errors.
absl::StatusOr<std::string> ApnsBodyDirect(const v1::PushRequest& request) {
  std::string aps = ApsJson(request);
  absl::InlinedVector<Member, 8> m;
  m.push_back({"aps", aps, true});
  if (!request.call_id().empty()) m.push_back({kCallIdKey, request.call_id()});
  if (!request.caller_uri().empty()) m.push_back({kCallerUriKey, request.caller_uri()});
  if (!request.caller_display_name().empty()) {
    m.push_back({kCallerNameKey, request.caller_display_name()});
  }
  const size_t fixed = m.size();
  for (const auto& [key, value] : request.data()) {
    // The same check, in the same (map) order, as AddCustomFields on the DOM.
    for (size_t i = 0; i < fixed; ++i) {
      if (m[i].key == key) return Collision(key);
    }
    m.push_back({key, value});
  }
  std::string body;
  body.reserve(64 + aps.size() + request.call_id().size() + request.caller_uri().size() +
               request.caller_display_name().size() + request.data().size() * 16);
  AppendObject(m, &body);
  return body;
}

}  // namespace

bool IsPayloadTooLarge(const absl::Status& status) {
  return status.GetPayload(kPayloadTooLargeUrl).has_value();
}

absl::StatusOr<std::string> ApnsBodyWithDom(const v1::PushRequest& request) {
  const v1::PushKind kind = request.kind();
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

  return Dump(body);
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

  absl::StatusOr<std::string> body =
      ApnsBodyStringsValid(request) ? ApnsBodyDirect(request) : ApnsBodyWithDom(request);
  if (!body.ok()) return body.status();

  HttpRequestSpec spec;
  spec.method = "POST";
  spec.path = absl::StrCat("/3/device/", request.destination().device_token());
  spec.body = *std::move(body);
  size_t limit = kind == v1::VOIP ? kApnsVoipPayloadLimit : kApnsPayloadLimit;
  if (spec.body.size() > limit) return TooLarge(spec.body.size(), limit);

  absl::Duration ttl = TimeToLive(request);
  int64_t expiration = ttl <= absl::ZeroDuration() ? 0 : absl::ToUnixSeconds(now + ttl);
  spec.headers.reserve(7);  // these, apns-collapse-id, apns-id, authorization (the caller's)
  spec.headers.emplace_back("apns-push-type", push_type);
  spec.headers.emplace_back("apns-topic", ApnsTopicFor(topic, kind));
  spec.headers.emplace_back("apns-priority", high ? "10" : "5");
  spec.headers.emplace_back("apns-expiration", absl::StrCat(expiration));
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
