// Push parameters carried in a Contact URI: RFC 8599 and the legacy Linphone/Flexisip forms,
// parsed into one value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/core/sip_uri.h"

namespace pushgate::proxy {

struct PushParams {
  enum Provider : uint8_t { kApns = 0, kApnsSandbox = 1, kFcm = 2, kOther = 3 };

  Provider provider = kOther;
  // As sent: RFC 8599 pn-provider ("apns", "apns.dev", "fcm", "webpush"...) or, for the legacy
  // form, pn-type ("apple", "google", "firebase", "android").
  std::string provider_name;
  // The device token to push calls to (RFC 8599 pn-prid, legacy pn-tok). For the multi-token
  // iOS form "pn-prid=<t1>:remote&<t2>:voip" this is the VoIP token when there is one, else the
  // remote (alert) token. EMPTY means an RFC 8599 capability query (pn-provider without pn-prid).
  std::string prid;
  // The alert (non-VoIP) APNs token from the multi-token form, when it differs from `prid`.
  std::string remote_prid;
  // RFC 8599 pn-param / legacy app-id. APNs: "<TeamID>.<bundle-id>[.voip]" (legacy app-id is the
  // bundle id alone); FCM: the project id (or the legacy sender id / app id).
  std::string param;
  bool voip = false;    // `prid` is a PushKit (VoIP) token: APNs push type voip
  bool legacy = false;  // parsed from pn-type/pn-tok/app-id
  // Legacy extras (pn-msg-str, pn-call-str, pn-silent, pn-timeout); empty/false/nullopt if absent.
  std::string msg_str;
  std::string call_str;
  bool silent = false;
  std::optional<uint32_t> timeout_seconds;

  bool capability_query() const { return prid.empty(); }

  // APNs only: team id (before the first dot of `param`), "" for the legacy form.
  std::string ApnsTeamId() const;
  // APNs only: the apns-topic for call pushes: bundle id, plus ".voip" when `voip`.
  std::string ApnsTopic() const;
  // APNs only: the bundle id (no team id, no ".voip"/".remote" suffix).
  std::string ApnsBundleId() const;

  bool operator==(const PushParams&) const = default;
};

// Parses the push parameters of a Contact URI.
//  - nullopt: no push parameter at all (no pn-provider, pn-prid, pn-param, pn-type, pn-tok,
//    app-id).
//  - RFC 8599: pn-provider is required when pn-prid or pn-param is present. "apns" -> kApns,
//    "apns.dev" -> kApnsSandbox, "fcm" -> kFcm, anything else -> kOther (the caller decides
//    whether to answer 555). APNs needs pn-param "<10-char TeamID>.<bundle>[.voip|.remote|
//    .remote&voip|.voip&remote]"; the prid may be "<token>" or "<tok>:remote&<tok>:voip".
//    APNs tokens must be hex; FCM tokens must be [A-Za-z0-9_:.-]+; pn-prid may be
//    percent-escaped (it is unescaped).
//  - Legacy: pn-type apple|google|firebase|android with pn-tok and app-id (both required). For
//    apple, an app-id ending in ".dev" -> kApnsSandbox (".prod" -> kApns); after removing that
//    suffix, an app-id ending in ".voip" marks a VoIP token. google/firebase/android -> kFcm.
// Present but malformed -> INVALID_ARGUMENT whose message is a precise 400 reason phrase, e.g.
// "pn-prid without pn-provider", "pn-param \"x\" is not <TeamID>.<bundle-id>",
// "pn-prid is not a hexadecimal APNs token", "pn-type \"apple\" without pn-tok".
absl::StatusOr<std::optional<PushParams>> ParsePushParams(const Uri& uri);

// True for every URI parameter that carries push information (pn-*, app-id): these are removed
// before anything reaches the backend or a response.
bool IsPushParamName(absl::string_view name);

// Identity of the device for "same device" matching: provider family + app + token, e.g.
// "apns|org.example.app|<token>" (APNs uses the bundle id, so the RFC 8599 and legacy forms of
// the same registration give the same key). Sandbox and production APNs differ.
// "" for a capability query (no token).
std::string PushKey(const PushParams& push);

}  // namespace pushgate::proxy
