// Builds the HTTP/2 request (path, headers, JSON body) for one push. Pure: `now` is a parameter.
// The caller adds :authority/:scheme and the authorization header, and runs ValidateRequest
// first; the builders re-check only what they depend on.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pusher/core/topic.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

struct HttpRequestSpec {
  std::string method;                                        // "POST"
  std::string path;                                          // ":path"
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;
};

inline constexpr size_t kApnsPayloadLimit = 4096;
inline constexpr size_t kApnsVoipPayloadLimit = 5120;
inline constexpr size_t kFcmPayloadLimit = 4096;

// Keys of the call fields in APNs payloads and FCM data (Flexisip/Linphone names): a data map
// entry may not reuse one that the request fills.
inline constexpr char kCallIdKey[] = "call-id";           // call_id
inline constexpr char kCallerUriKey[] = "from-uri";       // caller_uri
inline constexpr char kCallerNameKey[] = "display-name";  // caller_display_name

// APNs: POST /3/device/<token> with apns-push-type (voip/alert/background), apns-topic (bundle
// id, + ".voip" for VOIP), apns-priority (10; 5 for BACKGROUND and for PRIORITY_NORMAL),
// apns-expiration (0 when time_to_live is 0/unset, else now + ttl in epoch seconds),
// apns-collapse-id and apns-id (request_id lower-cased) when set. Body:
//   VOIP:       {"aps":{}, call fields, data...}
//   ALERT:      {"aps":{"alert":{"loc-key","loc-args":[caller]} or {"title","body"},
//                "sound", "badge" (when >= 0)}, call fields, data...}
//   BACKGROUND: {"aps":{"content-available":1}, call fields, data...}
// Errors (all INVALID_ARGUMENT): "payload is N bytes, limit M" when the body exceeds 4096 bytes
// (VOIP: 5120), recognised by IsPayloadTooLarge; DATA kind; a data key colliding with a call
// field.
absl::StatusOr<HttpRequestSpec> BuildApnsRequest(const v1::PushRequest& request,
                                                 const ApnsTopic& topic, absl::Time now);

// The APNs body built as an nlohmann DOM and dumped (invalid UTF-8 replaced by U+FFFD).
// BuildApnsRequest writes the same bytes without the DOM when every string is well-formed UTF-8
// (the usual case: protobuf checks UTF-8 when it parses), and falls back to this otherwise.
// Exposed so that tests compare the two.
absl::StatusOr<std::string> ApnsBodyWithDom(const v1::PushRequest& request);

// FCM HTTP v1: POST /v1/projects/<project_id>/messages:send, content-type application/json,
// body {"message":{"token", "data":{call fields, data... (all strings)},
//   "android":{"priority":"high"|"normal", "ttl":"<seconds>s", "collapse_key"}}}.
// Priority defaults to high for VOIP/ALERT, normal for BACKGROUND/DATA. ALERT also carries
// "notification":{"title","body"} and android.notification {body_loc_key, sound,
// notification_count}. INVALID_ARGUMENT "payload is N bytes, limit 4096" (IsPayloadTooLarge)
// when data and notification keys + values exceed 4096 bytes (FCM's own measure).
absl::StatusOr<HttpRequestSpec> BuildFcmRequest(const v1::PushRequest& request,
                                                absl::string_view project_id);

// Whether a builder error means the payload is too large (the caller answers REJECTED with
// reason "PayloadTooLarge" without sending). Such errors carry a status payload, so the mark
// survives copies of the status.
bool IsPayloadTooLarge(const absl::Status& status);

}  // namespace pushgate::pusher
