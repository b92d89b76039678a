// The pusher's request path for untrusted bytes: a gRPC message body -> ParsePushRequest (wire
// walk, UTF-8 and size checks) -> ValidateRequest. Neither may crash, hang or leak on any input,
// and a parsed request must survive a serialize/parse round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "pusher/core/request_wire.h"
#include "pusher/core/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view wire(reinterpret_cast<const char*>(data), size);
  (void)pushgate::pusher::PeekRequestId(wire);
  absl::StatusOr<pushgate::v1::PushRequest> request = pushgate::pusher::ParsePushRequest(wire);
  if (!request.ok()) {
    if (request.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  (void)pushgate::pusher::ValidateRequest(*request);
  // What was accepted re-encodes to bytes that are accepted again.
  if (!pushgate::pusher::ParsePushRequest(request->SerializeAsString()).ok()) std::abort();
  return 0;
}
