#include "pusher/http2/client.h"

#include <ostream>

#include "absl/strings/match.h"

namespace pushgate::http2 {

std::string Response::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

bool MayHaveBeenDelivered(FailureReason reason) {
  switch (reason) {
    case FailureReason::kQueueFull:
    case FailureReason::kShutdown:
    case FailureReason::kInvalidRequest:
    case FailureReason::kTlsFailure:
    case FailureReason::kNotSent:
    case FailureReason::kDeadlineBeforeSent:
      return false;
    case FailureReason::kDeadlineAfterSent:
    case FailureReason::kConnectionLost:
    case FailureReason::kStreamReset:
    case FailureReason::kResponseTooLarge:
      return true;
  }
  return true;  // unknown: assume the worst
}

absl::string_view FailureReasonName(FailureReason reason) {
  switch (reason) {
    case FailureReason::kQueueFull:
      return "queue_full";
    case FailureReason::kShutdown:
      return "shutdown";
    case FailureReason::kInvalidRequest:
      return "invalid_request";
    case FailureReason::kTlsFailure:
      return "tls_failure";
    case FailureReason::kNotSent:
      return "not_sent";
    case FailureReason::kDeadlineBeforeSent:
      return "deadline_before_sent";
    case FailureReason::kDeadlineAfterSent:
      return "deadline_after_sent";
    case FailureReason::kConnectionLost:
      return "connection_lost";
    case FailureReason::kStreamReset:
      return "stream_reset";
    case FailureReason::kResponseTooLarge:
      return "response_too_large";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, FailureReason reason) {
  return os << FailureReasonName(reason);
}

std::ostream& operator<<(std::ostream& os, const Result& result) {
  if (result.ok()) return os << "HTTP " << result->status;
  return os << result.reason() << ": " << result.status();
}

}  // namespace pushgate::http2
