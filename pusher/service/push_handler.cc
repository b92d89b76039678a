#include "pusher/service/push_handler.h"

#include <openssl/rand.h>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "pusher/core/validate.h"

namespace pushgate::pusher {
namespace {

// A random (version 4) UUID in lower case: usable as apns-id.
std::string NewRequestId() {
  unsigned char b[16];
  RAND_bytes(b, sizeof(b));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
}

}  // namespace

PushHandler::PushHandler(const Router& router, IdempotencyCache& idempotency, const Clock& clock)
    : router_(router), idempotency_(idempotency), clock_(clock) {}

v1::PushResult PushHandler::ErrorResult(const std::string& request_id, const absl::Status& status) {
  v1::PushResult result;
  result.set_request_id(request_id);
  switch (status.code()) {
    case absl::StatusCode::kFailedPrecondition:
      result.set_outcome(v1::NO_CREDENTIALS);
      break;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
      result.set_outcome(v1::RETRY_LATER);
      break;
    default:
      result.set_outcome(v1::REJECTED);
  }
  result.set_reason(absl::StrFormat("%s: %s", absl::StatusCodeToString(status.code()),
                                    std::string(status.message())));
  return result;
}

bool PushHandler::IsVerdict(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition ||
         status.code() == absl::StatusCode::kUnavailable;
}

void PushHandler::Handle(v1::PushRequest request, const ApiKeyEntry* client, absl::Time deadline,
                         ResultCallback done, bool errors_as_results) {
  const bool id_generated = request.request_id().empty();
  if (id_generated) request.set_request_id(NewRequestId());
  auto fail = [&](const absl::Status& s) {
    if (errors_as_results || IsVerdict(s)) {
      done(ErrorResult(id_generated ? std::string() : request.request_id(), s));
    } else {
      done(s);
    }
  };
  if (absl::Status s = ValidateRequest(request); !s.ok()) {
    fail(s);
    return;
  }
  if (absl::Status s = Authorizer::CheckApp(client, request.destination()); !s.ok()) {
    fail(s);
    return;
  }
  absl::StatusOr<ProviderClient*> provider = router_.Route(request.destination());
  if (!provider.ok()) {
    fail(provider.status());
    return;
  }
  IdempotencyCache::BeginResult begin;
  {
    std::lock_guard lock(mu_);
    begin = idempotency_.Begin(request.request_id(), clock_.Now());
    if (begin.state == IdempotencyCache::State::kInFlight) {
      // Answered with the first send's verdict (under mu_, so Complete cannot miss it).
      duplicates_[request.request_id()].push_back({std::move(done), errors_as_results});
      return;
    }
  }
  if (begin.state == IdempotencyCache::State::kDone) {
    done(std::move(begin.result));
    return;
  }
  std::string id = request.request_id();
  (*provider)->Send(std::move(request), deadline,
                    [this, id = std::move(id), done = std::move(done), errors_as_results,
                     id_generated](absl::StatusOr<v1::PushResult> result) mutable {
                      Complete(id, std::move(result), done, errors_as_results, id_generated);
                    });
}

void PushHandler::Complete(const std::string& request_id, absl::StatusOr<v1::PushResult> result,
                           const ResultCallback& done, bool errors_as_results, bool id_generated) {
  std::vector<Duplicate> duplicates;
  {
    std::lock_guard lock(mu_);
    // Remember only verdicts a retry must not change; a retry after RETRY_LATER or a request
    // error (queue full, deadline) may push.
    if (result.ok() && result->outcome() != v1::RETRY_LATER) {
      idempotency_.Complete(request_id, *result, clock_.Now());
    } else {
      idempotency_.Abandon(request_id);
    }
    if (!duplicates_.empty()) {  // the common case needs no lookup
      auto it = duplicates_.find(request_id);
      if (it != duplicates_.end()) {
        duplicates = std::move(it->second);
        duplicates_.erase(it);
      }
    }
  }
  // Duplicates of the request id (rare) get copies; the first caller gets the result moved.
  for (Duplicate& duplicate : duplicates) {
    if (!result.ok() && (duplicate.errors_as_results || IsVerdict(result.status()))) {
      duplicate.done(ErrorResult(request_id, result.status()));  // a duplicate sent this id
    } else {
      duplicate.done(result);
    }
  }
  if (!result.ok() && (errors_as_results || IsVerdict(result.status()))) {
    result = ErrorResult(id_generated ? std::string() : request_id, result.status());
  }
  done(std::move(result));
}

}  // namespace pushgate::pusher
