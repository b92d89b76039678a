// A ProviderClient over one HTTP/2 pool: builds each attempt with a ProviderBackend (APNs or
// FCM), classifies the answer, retries 429/5xx with backoff inside the deadline, refreshes a
// refused token once.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "pusher/core/classify.h"
#include "pusher/core/retry.h"
#include "pusher/http2/pool.h"
#include "pusher/provider/provider_client.h"
#include "pusher/provider/scheduler.h"

namespace pushgate::pusher {

// The provider-specific part: request building (with authorization) and credential state.
class ProviderBackend {
 public:
  virtual ~ProviderBackend() = default;
  virtual v1::Provider provider() const = 0;
  // Builds one attempt's HTTP request, authorization included. Asynchronous because FCM may
  // have to fetch an access token first. Errors: INVALID_ARGUMENT (the push cannot be sent as
  // asked, e.g. payload too large), UNAUTHENTICATED (no usable credential), UNAVAILABLE
  // (credential service unreachable: worth retrying).
  virtual void Prepare(const v1::PushRequest& request, absl::Time now,
                       std::function<void(absl::StatusOr<http2::Request>)> done) = 0;
  // The provider refused the credential with `reason`. Answers true when one more attempt with
  // a fresh credential makes sense (an expired APNs token); otherwise the credential is marked
  // unhealthy and Problem() says why.
  virtual bool OnAuthRejected(absl::string_view reason, absl::Time now) = 0;
  // The provider's id for an accepted push (apns-id header, FCM message name).
  virtual std::string MessageId(const http2::Response& response) const = 0;
  // The provider accepted a push: the credential works (clears Problem()).
  virtual void OnAccepted() = 0;
  virtual std::string Problem() const = 0;
};

class RetryingClient final : public ProviderClient {
 public:
  RetryingClient(std::string name, std::unique_ptr<http2::Pool> pool,
                 std::unique_ptr<ProviderBackend> backend, RetryPolicy policy, Scheduler& scheduler,
                 const Clock& clock);
  ~RetryingClient() override;

  void Send(v1::PushRequest request, absl::Time deadline, ResultCallback done) override;
  std::string Problem() const override;
  void Drain(absl::Duration timeout) override;

 private:
  struct Attempt;
  void Try(std::shared_ptr<Attempt> attempt);
  void OnResponse(std::shared_ptr<Attempt> attempt, absl::StatusOr<http2::Response> response);
  // Retries after the policy's delay, or finishes with RETRY_LATER when no retry fits.
  void RetryOrGiveUp(std::shared_ptr<Attempt> attempt, v1::PushResult last,
                     std::optional<absl::Duration> retry_after);
  void Finish(const std::shared_ptr<Attempt>& attempt, absl::StatusOr<v1::PushResult> result);

  std::string name_;
  std::unique_ptr<http2::Pool> pool_;
  std::unique_ptr<ProviderBackend> backend_;
  RetryPolicy policy_;
  Scheduler& scheduler_;
  const Clock& clock_;
  // Pushes in flight = started - finished. Two counters on their own cache lines: Send runs on
  // the gRPC threads and Finish mostly on the pool's loop thread, and one shared counter would
  // move between their cores twice per push.
  alignas(64) std::atomic<int64_t> started_{0};
  alignas(64) std::atomic<int64_t> finished_{0};
  metrics::Histogram& latency_;
  metrics::Counter& attempts_;
  std::vector<metrics::Counter*> outcomes_;  // by v1::Outcome value, looked up once
};

}  // namespace pushgate::pusher
