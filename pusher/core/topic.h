// RFC 8599 pn-param parsing: which APNs topic or FCM project a push goes to.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

struct ApnsTopic {
  std::string team_id;    // "ABCD123456" (the part before the first dot)
  std::string bundle_id;  // "com.example.phone"
  bool voip = false;      // pn-param ended in ".voip": the token is a PushKit (VoIP) token
};

// Parses an APNs pn-param "<TeamID>.<bundle-id>[.<service>]". The first dot ends the team id
// (10 characters A-Z/0-9). A trailing ".voip" sets `voip`; a trailing ".apns" is dropped; so are
// Linphone's service lists joined by '&' (".remote&voip", ".voip&remote"; `voip` set when one
// of them is "voip"). The bundle id is dot-separated labels of letters, digits and '-'.
absl::StatusOr<ApnsTopic> ParseApnsPnParam(absl::string_view pn_param);

// ParseApnsPnParam memoized for the last pn-param parsed on this thread (pushes come in runs for
// the same app, and every push needs its topic twice: routing and request building). The
// pointer stays valid until the next call on the same thread.
absl::StatusOr<const ApnsTopic*> ParseApnsPnParamCached(absl::string_view pn_param);

// The apns-topic header for a push of `kind`: the bundle id, plus ".voip" for VOIP pushes.
std::string ApnsTopicFor(const ApnsTopic& topic, v1::PushKind kind);

// FCM's pn-param is the Firebase project id. Checks it can be put in the request path:
// non-empty, at most 100 characters of letters, digits, '-', '_', '.', ':'.
absl::StatusOr<std::string> ParseFcmPnParam(absl::string_view pn_param);

}  // namespace pushgate::pusher
