// How the proxy has pushes sent: a narrow interface (fakes in tests), implemented over gRPC.
#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::proxy {

class PushClient {
 public:
  using Callback = std::function<void(absl::StatusOr<v1::PushResult>)>;
  virtual ~PushClient() = default;
  // Sends one push; `done` runs exactly once, on the thread the implementation documents.
  virtual void Send(v1::PushRequest request, absl::Duration timeout, Callback done) = 0;
};

}  // namespace pushgate::proxy
