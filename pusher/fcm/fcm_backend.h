// FCM HTTP v1: request building and OAuth2 access tokens obtained in process (RS256 assertion
// exchanged at the token URI), cached and refreshed ahead of expiry without blocking sends.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "pusher/core/fcm_auth.h"
#include "pusher/core/jwt.h"
#include "pusher/http2/client.h"
#include "pusher/http2/options.h"
#include "pusher/provider/retrying_client.h"

namespace pushgate::pusher {

class FcmBackend final : public ProviderBackend {
 public:
  // `token_uri`: where access tokens come from (the service account's, or an override);
  // `tls`: how to reach it. Errors name the bad URI or key.
  static absl::StatusOr<std::unique_ptr<FcmBackend>> Create(ServiceAccount account,
                                                            const std::string& token_uri,
                                                            http2::TlsOptions tls,
                                                            Scheduler& scheduler,
                                                            const Clock& clock);
  ~FcmBackend() override;

  v1::Provider provider() const override { return v1::FCM; }
  void Prepare(const v1::PushRequest& request, absl::Time now,
               std::function<void(absl::StatusOr<http2::Request>)> done) override;
  bool OnAuthRejected(absl::string_view reason, absl::Time now) override;
  std::string MessageId(const http2::Response&) const override { return ""; }
  void OnAccepted() override;
  std::string Problem() const override;

  const std::string& project_id() const { return account_.project_id; }

  // Starts fetching a token now (at start-up, so the first push does not wait for it).
  void Warm();

 private:
  FcmBackend(ServiceAccount account, PKey key, std::string token_path, Scheduler& scheduler,
             const Clock& clock);
  using Waiter = std::function<void(absl::StatusOr<std::string>)>;
  void Refresh(absl::Time now);
  void OnTokenResponse(absl::StatusOr<http2::Response> response);
  void ScheduleRefresh();

  const ServiceAccount account_;
  const PKey key_;
  const std::string token_path_;
  Scheduler& scheduler_;
  const Clock& clock_;
  AccessTokenCache cache_;
  mutable std::mutex mu_;
  std::vector<Waiter> waiting_;  // sends waiting for the first (or a replacement) token
  std::string problem_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for scheduled refreshes
  std::unique_ptr<http2::Client> token_pool_;                   // last: destroyed first
};

}  // namespace pushgate::pusher
