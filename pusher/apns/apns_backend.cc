#include "pusher/apns/apns_backend.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "pusher/core/payload.h"
#include "pusher/core/topic.h"
#include "pusher/provider/http2_request.h"

namespace pushgate::pusher {

ApnsBackend::ApnsBackend(v1::Provider environment, std::unique_ptr<ApnsTokenSigner> signer)
    : environment_(environment), signer_(std::move(signer)) {}

ApnsBackend::ApnsBackend(v1::Provider environment, std::string bundle_id)
    : environment_(environment), bundle_id_(std::move(bundle_id)) {}

void ApnsBackend::Prepare(const v1::PushRequest& request, absl::Time now,
                          std::function<void(absl::StatusOr<http2::Request>)> done) {
  absl::StatusOr<const ApnsTopic*> topic = ParseApnsPnParamCached(request.destination().app());
  if (!topic.ok()) {
    done(topic.status());
    return;
  }
  absl::StatusOr<HttpRequestSpec> spec = BuildApnsRequest(request, **topic, now);
  if (!spec.ok()) {
    done(spec.status());
    return;
  }
  http2::Request http = ToHttp2Request(*std::move(spec));
  if (signer_ != nullptr) {
    absl::StatusOr<std::string> authorization = signer_->AuthorizationHeader(now);
    if (!authorization.ok()) {
      done(absl::UnauthenticatedError(
          absl::StrCat("cannot sign the APNs provider token: ", authorization.status().message())));
      return;
    }
    http.headers.emplace_back("authorization", *std::move(authorization));
  }
  done(std::move(http));
}

bool ApnsBackend::OnAuthRejected(absl::string_view reason, absl::Time now) {
  bool retry = false;
  if (signer_ != nullptr && reason == "ExpiredProviderToken") {
    // Re-sign at once if the 20-minute floor allows it; otherwise this push fails and the
    // credential stays marked until a fresh token is accepted.
    retry = signer_->Invalidate(now) <= now;
  }
  std::lock_guard lock(mu_);
  problem_ = absl::StrCat("APNs refused the credential: ", reason);
  return retry;
}

std::string ApnsBackend::MessageId(const http2::Response& response) const {
  return response.Header("apns-id");
}

void ApnsBackend::OnAccepted() {
  std::lock_guard lock(mu_);
  problem_.clear();
}

std::string ApnsBackend::Problem() const {
  std::lock_guard lock(mu_);
  return problem_;
}

}  // namespace pushgate::pusher
