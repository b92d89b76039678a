// A ProviderClient over one HTTP/2 client (a pool): builds each attempt with a ProviderBackend
// (APNs or FCM), classifies the answer, retries 429/5xx with backoff inside the deadline,
// refreshes a refused token once.
//
// Retry rules: an HTTP answer is retried when Classify() calls it retryable (429, 5xx); a
// failure without an answer is retried only when the request never reached the provider
// (!http2::MayHaveBeenDelivered(reason)) and the HTTP/2 client is not shutting down; one that
// may have been delivered is answered RETRY_LATER at once (the caller decides: sending again
// could deliver twice), and so is a shutdown; a full queue or a deadline is answered with its
// status. Retries wait for RetryPolicy::NextDelay on the
// Scheduler and stop at the request's deadline.
//
// Threads: Send() from any thread; attempts continue on the HTTP/2 client's thread and the
// scheduler's. Owns the HTTP/2 client and the backend; the scheduler and clock outlive it.
// Destroying it destroys the HTTP/2 client first, which answers the pushes still in flight.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "pusher/core/classify.h"
#include "pusher/core/retry.h"
#include "pusher/http2/client.h"
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
  RetryingClient(std::string name, std::unique_ptr<http2::Client> http,
                 std::unique_ptr<ProviderBackend> backend, RetryPolicy policy, Scheduler& scheduler,
                 const Clock& clock);
  ~RetryingClient() override;

  void Send(v1::PushRequest request, absl::Time deadline, ResultCallback done) override;
  std::string Problem() const override;
  void Drain(absl::Duration timeout) override;

 private:
  struct Attempt;
  void Try(const std::shared_ptr<Attempt>& attempt);
  void OnResult(const std::shared_ptr<Attempt>& attempt, http2::Result result);
  // No HTTP answer: give up, answer RETRY_LATER, or retry (see the rules above).
  void OnFailure(const std::shared_ptr<Attempt>& attempt, const http2::Failure& failure);
  // Retries after the policy's delay, or finishes with RETRY_LATER when no retry fits.
  void RetryOrGiveUp(const std::shared_ptr<Attempt>& attempt, v1::PushResult last,
                     std::optional<absl::Duration> retry_after);
  void Finish(const std::shared_ptr<Attempt>& attempt, absl::StatusOr<v1::PushResult> result);

  std::string name_;
  std::unique_ptr<http2::Client> http_;
  std::unique_ptr<ProviderBackend> backend_;
  RetryPolicy policy_;
  Scheduler& scheduler_;
  const Clock& clock_;
  // Pushes in flight = started - finished. Two counters on their own cache lines: Send runs on
  // the gRPC threads and Finish mostly on the pool's loop thread, and one shared counter would
  // move between their cores twice per push.
  alignas(64) std::atomic<int64_t> started_{0};
  alignas(64) std::atomic<int64_t> finished_{0};
  // Drain() waits on drain_mu_ (its condition is re-checked whenever the mutex is released);
  // Finish takes the mutex only while someone drains.
  std::atomic<int> drain_waiters_{0};
  absl::Mutex drain_mu_;
  metrics::Histogram& latency_;
  metrics::Counter& attempts_;
  std::vector<metrics::Counter*> outcomes_;  // by v1::Outcome value, looked up once
};

}  // namespace pushgate::pusher
