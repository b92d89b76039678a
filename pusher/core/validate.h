// Request validation: everything about a PushRequest that can be judged before any I/O.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

inline constexpr size_t kMaxRequestIdBytes = 64;
// The app (pn-param) becomes the apns-topic header or the FCM URL: TeamID (10) + bundle id (at
// most 155 characters, Apple's limit) + ".voip" fits with room; FCM project ids are 6-30.
inline constexpr size_t kMaxAppBytes = 256;
inline constexpr size_t kMaxCollapseIdBytes = 64;  // apns-collapse-id limit
inline constexpr size_t kMinApnsTokenHexChars = 32;
inline constexpr size_t kMaxApnsTokenHexChars = 200;
inline constexpr size_t kMaxFcmTokenBytes = 4096;
inline constexpr size_t kMaxDataBytes = 4096;  // keys + values of the data map
inline constexpr int64_t kMaxTimeToLiveSeconds = int64_t{28} * 24 * 3600;  // FCM's 4-week maximum

// OK, or INVALID_ARGUMENT naming the field and the problem ("destination.device_token: ...").
// Checks: provider and kind set and known; destination.app parses as an APNs pn-param / FCM
// project id; device token present (APNs: even-length hex of 32..200 characters; FCM: at most
// 4096 bytes, no whitespace or control characters); DATA pushes are FCM-only (APNs has no
// data-only push type: use BACKGROUND); BACKGROUND cannot ask for high priority on APNs
// (Apple requires apns-priority 5); ALERT needs loc_key, alert_title or alert_body;
// collapse_id <= 64 bytes; time_to_live in [0, 28 days]; request_id <= 64 bytes and, for APNs,
// a UUID (it becomes apns-id); data keys non-empty, not reserved ("aps" on APNs; "from",
// "notification", "message_type", "google.*", "gcm.*" on FCM), keys + values <= 4096 bytes.
// Device tokens never appear in the message.
absl::Status ValidateRequest(const v1::PushRequest& request);

// 8-4-4-4-12 hexadecimal digits (either case).
bool IsUuid(absl::string_view text);

// Whether the provider is APNS or APNS_SANDBOX.
bool IsApns(v1::Provider provider);

}  // namespace pushgate::pusher
