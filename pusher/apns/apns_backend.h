// APNs: request building (topic, push type, priority, payload) and authentication, either a
// provider token (.p8 key, ES256 JWT) or a client certificate presented by the HTTP/2 pool.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "pusher/core/apns_token.h"
#include "pusher/core/payload.h"
#include "pusher/provider/retrying_client.h"

namespace pushgate::pusher {

class ApnsBackend final : public ProviderBackend {
 public:
  // Token auth: `signer` signs the bearer token of every request.
  ApnsBackend(v1::Provider environment, std::unique_ptr<ApnsTokenSigner> signer);
  // Certificate auth for `bundle_id`: the pool's TLS client certificate authenticates.
  ApnsBackend(v1::Provider environment, std::string bundle_id);

  v1::Provider provider() const override { return environment_; }
  void Prepare(const v1::PushRequest& request, absl::Time now,
               std::function<void(absl::StatusOr<http2::Request>)> done) override;
  bool OnAuthRejected(absl::string_view reason, absl::Time now) override;
  std::string MessageId(const http2::Response& response) const override;
  void OnAccepted() override;
  std::string Problem() const override;

 private:
  const v1::Provider environment_;
  const std::unique_ptr<ApnsTokenSigner> signer_;  // null with certificate auth
  const std::string bundle_id_;                    // certificate auth only
  mutable std::mutex mu_;
  std::string problem_;
};

}  // namespace pushgate::pusher
