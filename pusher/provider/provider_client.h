// What the gRPC service sees of a provider credential: send one push, get its verdict.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

// The verdict, or a request-level error: RESOURCE_EXHAUSTED (queue full), DEADLINE_EXCEEDED,
// UNAVAILABLE (shutting down). Called exactly once, from any thread.
using ResultCallback = std::function<void(absl::StatusOr<v1::PushResult>)>;

class ProviderClient {
 public:
  virtual ~ProviderClient() = default;
  // Sends one validated push, retrying within `deadline` where the provider allows it. The
  // request is taken by value: callers move it in (a push is copied nowhere on its way).
  virtual void Send(v1::PushRequest request, absl::Time deadline, ResultCallback done) = 0;
  // Empty while the credential works (or is not known not to), else why it does not.
  virtual std::string Problem() const = 0;
  // Waits (bounded) for pushes in flight, for graceful shutdown.
  virtual void Drain(absl::Duration timeout) = 0;
};

}  // namespace pushgate::pusher
