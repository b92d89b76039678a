#include "proxy/push/push_request.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace pushgate::proxy {

v1::PushRequest BuildPushRequest(const Binding& binding, PushKind kind, const CallInfo& call,
                                 absl::Duration ttl, const std::string& legacy_apns_team) {
  v1::PushRequest request;
  const PushParams& push = *binding.push;
  v1::Destination* dest = request.mutable_destination();
  switch (push.provider) {
    case PushParams::kApnsSandbox:
      dest->set_provider(v1::APNS_SANDBOX);
      break;
    case PushParams::kFcm:
      dest->set_provider(v1::FCM);
      break;
    default:
      dest->set_provider(v1::APNS);
      break;
  }
  if (push.legacy && push.provider != PushParams::kFcm && push.provider != PushParams::kOther &&
      !legacy_apns_team.empty()) {
    dest->set_app(ToValidUtf8(
        absl::StrCat(legacy_apns_team, ".", push.ApnsBundleId(), push.voip ? ".voip" : "")));
  } else {
    dest->set_app(ToValidUtf8(push.param));
  }
  bool alert = kind == PushKind::kAlert || kind == PushKind::kMissedCallAlert;
  dest->set_device_token(
      ToValidUtf8(alert && !push.remote_prid.empty() ? push.remote_prid : push.prid));
  switch (kind) {
    case PushKind::kVoip:
      request.set_kind(v1::VOIP);
      break;
    case PushKind::kData:
      request.set_kind(v1::DATA);
      request.set_priority(v1::PRIORITY_HIGH);  // only high priority wakes the app for a call
      break;
    case PushKind::kAlert:
      request.set_kind(v1::ALERT);
      request.set_loc_key(ToValidUtf8(push.call_str.empty() ? "IC_MSG" : push.call_str));
      request.set_alert_body("Incoming call");
      request.set_sound("default");
      break;
    case PushKind::kMissedCallAlert:
      request.set_kind(v1::ALERT);
      request.set_loc_key("MISSED_CALL");
      request.set_alert_body("Missed call");
      break;
  }
  // Protobuf string fields must be valid UTF-8 (serialization fails otherwise and the push is
  // lost); SIP text may be Latin-1 or any bytes.
  request.set_call_id(ToValidUtf8(call.call_id));
  request.set_caller_uri(ToValidUtf8(call.caller_uri));
  request.set_caller_display_name(ToValidUtf8(call.caller_display_name));
  request.set_badge(-1);
  request.mutable_time_to_live()->set_seconds(absl::ToInt64Seconds(ttl));
  return request;
}

absl::Duration CallPushTtl(absl::Time call_started, absl::Duration call_timeout, absl::Time now) {
  return std::max(absl::Seconds(1), call_started + call_timeout - now);
}

PushVerdict PushVerdictOf(const absl::StatusOr<v1::PushResult>& result) {
  if (!result.ok()) return {Fork::PushOutcome::kFailed, "error"};
  switch (result->outcome()) {
    case v1::ACCEPTED:
      return {Fork::PushOutcome::kAccepted, "accepted"};
    case v1::TOKEN_INVALID:
      return {Fork::PushOutcome::kTokenInvalid, "token_invalid"};
    default:
      return {Fork::PushOutcome::kFailed, "failed"};
  }
}

}  // namespace pushgate::proxy
