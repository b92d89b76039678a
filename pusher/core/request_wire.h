// Decoding a PushRequest from the bytes a gRPC client sent, with errors that name the field.
// protobuf's own parser rejects a proto3 string that is not UTF-8 without saying which, and the
// generated gRPC handler turns that into a bare error; the pusher parses the bytes itself.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

// A PushRequest larger than this is refused (INVALID_ARGUMENT). The largest valid request: a 4 KiB
// data map, a 4 KiB FCM token, alert texts and caller fields within their limits (validate.h).
inline constexpr size_t kMaxRequestBytes = size_t{32} * 1024;
// What the gRPC server receives at most (its default is 4 MiB): a request between the two
// limits is answered INVALID_ARGUMENT naming its largest field; above it gRPC answers
// RESOURCE_EXHAUSTED without buffering the whole message.
inline constexpr int kMaxGrpcReceiveBytes = 1024 * 1024;

// The request, or INVALID_ARGUMENT: "<field path>: is not valid UTF-8 (byte N)" for a string
// field (nested fields as "destination.app", map entries as "data.key" / "data.value"), or
// "request: <what is wrong with the encoding>" for bytes that are not a PushRequest (truncated,
// a wrong wire type for a known field, groups, nesting deeper than the message). Unknown fields
// are kept, as protobuf does, so a newer client's request still parses.
absl::StatusOr<v1::PushRequest> ParsePushRequest(absl::string_view wire);

// The request_id field of a request that failed to parse, when it can be read and is valid
// UTF-8 (so a stream's error result can be matched by the client), else empty.
std::string PeekRequestId(absl::string_view wire);

}  // namespace pushgate::pusher
