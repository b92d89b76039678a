// One push from the API to its verdict, independent of gRPC: authorisation, validation,
// idempotency, routing to the provider client. The gRPC reactors only translate.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "pusher/core/idempotency.h"
#include "pusher/provider/provider_client.h"
#include "pusher/service/auth.h"
#include "pusher/service/router.h"

namespace pushgate::pusher {

class PushHandler {
 public:
  PushHandler(const Router& router, IdempotencyCache& idempotency, const Clock& clock);

  // `done` receives the verdict, or an error of the request as a whole: INVALID_ARGUMENT,
  // PERMISSION_DENIED, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED. The pusher's own verdicts (no
  // credentials for the app: NO_CREDENTIALS; provider unreachable: RETRY_LATER) are results for
  // both methods (IsVerdict; the proto's "Verdicts and errors").
  // A request id seen before within the idempotency window answers the first verdict without
  // pushing again (waiting for it if the first is still in flight).
  // With `errors_as_results` (streams), a request error reaches `done` as its ErrorResult (with
  // the request id the client sent) instead of an error status: `done` then always gets a
  // PushResult, and the caller needs no copy of the id.
  void Handle(v1::PushRequest request, const ApiKeyEntry* client, absl::Time deadline,
              ResultCallback done, bool errors_as_results = false);

  // Turns a request error into the PushResult a stream carries (a stream cannot fail one message).
  static v1::PushResult ErrorResult(const std::string& request_id, const absl::Status& status);

  // True for the errors that are the pusher's verdict on the push rather than a failed call
  // (FAILED_PRECONDITION: no credentials; UNAVAILABLE: provider unreachable): both methods
  // answer them with ErrorResult.
  static bool IsVerdict(const absl::Status& status);

 private:
  // `id_generated`: the client sent no id (its ErrorResult then carries none either).
  void Complete(const std::string& request_id, absl::StatusOr<v1::PushResult> result,
                const ResultCallback& done, bool errors_as_results, bool id_generated);

  const Router& router_;
  IdempotencyCache& idempotency_;
  const Clock& clock_;
  std::mutex mu_;
  // request_id -> callers that sent an id already in flight (the first caller's callback
  // travels with its push).
  struct Duplicate {
    ResultCallback done;
    bool errors_as_results;
  };
  absl::flat_hash_map<std::string, std::vector<Duplicate>> duplicates_;
};

}  // namespace pushgate::pusher
