// What the proxy asks the pusher for: one PushRequest per fork push decision (pure mapping).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/core/binding.h"
#include "proxy/core/fork.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::proxy {

struct CallInfo {
  std::string call_id;
  std::string caller_uri;           // From URI, without tag
  std::string caller_display_name;  // From display name, unquoted
};

// The push for `binding` (which must carry push parameters: PushKindFor(binding) is set).
//  - VoIP: APNs PushKit push to the VoIP token, with the call fields.
//  - Data: FCM high-priority data message with the call fields.
//  - Alert / MissedCallAlert: APNs alert to the remote (alert) token when the device gave one,
//    localisation key IC_MSG / MISSED_CALL (the legacy pn-call-str overrides IC_MSG).
// `ttl`: how long the provider may keep trying (a call push is useless after the fork ends).
// `legacy_apns_team`: the Apple team id for phones registered with the legacy parameters
// (pn-type=apple; their app-id is a bundle id with optional .voip/.prod/.dev, no team id): the
// app becomes "<team>.<bundle>[.voip]" as RFC 8599 writes it. Empty: the app-id is passed as is
// (the pusher rejects it unless it already starts with a team id).
v1::PushRequest BuildPushRequest(const Binding& binding, PushKind kind, const CallInfo& call,
                                 absl::Duration ttl, const std::string& legacy_apns_team = "");

// How long the provider may keep trying a push sent at `now` for a call that started at
// `call_started` and ends after `call_timeout`: the rest of the call, at least one second.
absl::Duration CallPushTtl(absl::Time call_started, absl::Duration call_timeout, absl::Time now);

// What the pusher's answer means for the fork, and its metric label: ACCEPTED -> kAccepted
// "accepted"; TOKEN_INVALID -> kTokenInvalid "token_invalid" (the binding must go); any other
// outcome -> kFailed "failed"; an RPC error -> kFailed "error".
struct PushVerdict {
  Fork::PushOutcome outcome = Fork::PushOutcome::kFailed;
  const char* label = "error";
};
PushVerdict PushVerdictOf(const absl::StatusOr<v1::PushResult>& result);

}  // namespace pushgate::proxy
