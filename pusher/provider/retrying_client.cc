#include "pusher/provider/retrying_client.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "google/protobuf/util/time_util.h"
#include "pusher/core/payload.h"

namespace pushgate::pusher {
namespace {

double Random01() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

const char* ProviderName(v1::Provider p) {
  switch (p) {
    case v1::APNS:
      return "apns";
    case v1::APNS_SANDBOX:
      return "apns_sandbox";
    case v1::FCM:
      return "fcm";
    default:
      return "unknown";
  }
}

metrics::Counter& OutcomeCounter(v1::Provider provider, v1::Outcome outcome) {
  std::string outcome_name = v1::Outcome_Name(outcome);
  for (char& c : outcome_name) c = static_cast<char>(std::tolower(c));
  return metrics::Registry::Default().GetCounter(
      "pushgate_pusher_pushes_total", "Pushes answered, by provider and outcome.",
      {{"provider", ProviderName(provider)}, {"outcome", outcome_name}});
}

metrics::Counter& AttemptCounter(v1::Provider provider) {
  return metrics::Registry::Default().GetCounter(
      "pushgate_pusher_provider_requests_total",
      "HTTP/2 requests sent to providers (retries included).",
      {{"provider", ProviderName(provider)}});
}

google::protobuf::Duration ToProto(absl::Duration d) {
  return google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

}  // namespace

struct RetryingClient::Attempt {
  v1::PushRequest request;
  absl::Time deadline;
  absl::Time started;
  ResultCallback done;
  int attempts = 0;
  bool auth_retried = false;
};

RetryingClient::RetryingClient(std::string name, std::unique_ptr<http2::Client> http,
                               std::unique_ptr<ProviderBackend> backend, RetryPolicy policy,
                               Scheduler& scheduler, const Clock& clock)
    : name_(std::move(name)),
      http_(std::move(http)),
      backend_(std::move(backend)),
      policy_(policy),
      scheduler_(scheduler),
      clock_(clock),
      latency_(metrics::Registry::Default().GetHistogram(
          "pushgate_pusher_push_duration_seconds",
          "Time from the gRPC request to the provider's final verdict.", metrics::LatencyBuckets(),
          {{"provider", ProviderName(backend_->provider())}})),
      attempts_(AttemptCounter(backend_->provider())) {
  for (int o = 0; o <= v1::Outcome_MAX; ++o) {
    outcomes_.push_back(v1::Outcome_IsValid(o)
                            ? &OutcomeCounter(backend_->provider(), static_cast<v1::Outcome>(o))
                            : nullptr);
  }
}

RetryingClient::~RetryingClient() {
  // First: the client answers what it still holds (shut down, or possibly delivered) while every
  // member those answers use is alive; none of them is retried.
  http_.reset();
}

void RetryingClient::Send(v1::PushRequest request, absl::Time deadline, ResultCallback done) {
  auto attempt = std::make_shared<Attempt>();
  attempt->request = std::move(request);
  attempt->deadline = deadline;
  attempt->started = clock_.Now();
  attempt->done = std::move(done);
  started_.fetch_add(1, std::memory_order_relaxed);
  Try(attempt);
}

void RetryingClient::Try(const std::shared_ptr<Attempt>& attempt) {
  absl::Time now = clock_.Now();
  if (now >= attempt->deadline) {
    Finish(attempt, absl::DeadlineExceededError(absl::StrCat("deadline exceeded after ",
                                                             attempt->attempts, " attempt(s)")));
    return;
  }
  backend_->Prepare(attempt->request, now, [this, attempt](absl::StatusOr<http2::Request> req) {
    if (!req.ok()) {
      v1::PushResult result;
      result.set_reason(std::string(req.status().message()));
      switch (req.status().code()) {
        case absl::StatusCode::kInvalidArgument:
          // Refused before sending, as the provider would (e.g. 413 PayloadTooLarge).
          result.set_outcome(v1::REJECTED);
          if (IsPayloadTooLarge(req.status())) {
            result.set_reason(absl::StrCat("PayloadTooLarge: ", req.status().message()));
          }
          Finish(attempt, std::move(result));
          return;
        case absl::StatusCode::kUnauthenticated:
        case absl::StatusCode::kPermissionDenied:
          result.set_outcome(v1::AUTH_FAILED);
          Finish(attempt, std::move(result));
          return;
        default:
          result.set_outcome(v1::RETRY_LATER);
          RetryOrGiveUp(attempt, std::move(result), std::nullopt);
          return;
      }
    }
    req->deadline = attempt->deadline;
    ++attempt->attempts;
    attempts_.Inc();
    http_->Submit(*std::move(req),
                  [this, attempt](http2::Result result) { OnResult(attempt, std::move(result)); });
  });
}

void RetryingClient::OnFailure(const std::shared_ptr<Attempt>& attempt,
                               const http2::Failure& failure) {
  switch (failure.reason) {
    case http2::FailureReason::kQueueFull:
    case http2::FailureReason::kDeadlineBeforeSent:
    case http2::FailureReason::kDeadlineAfterSent:
      Finish(attempt, failure.status);
      return;
    default:
      break;
  }
  v1::PushResult result;
  result.set_outcome(v1::RETRY_LATER);
  result.set_reason(std::string(failure.status.message()));
  if (http2::MayHaveBeenDelivered(failure.reason)) {
    // The provider may have processed the push: sending again could deliver it twice, so the
    // caller decides.
    Finish(attempt, std::move(result));
    return;
  }
  if (failure.reason == http2::FailureReason::kShutdown) {
    // Never sent, but a client shutting down answers every retry the same way.
    Finish(attempt, std::move(result));
    return;
  }
  RetryOrGiveUp(attempt, std::move(result), std::nullopt);
}

void RetryingClient::OnResult(const std::shared_ptr<Attempt>& attempt, http2::Result response) {
  if (!response.ok()) {
    OnFailure(attempt, response.failure());
    return;
  }
  absl::Time now = clock_.Now();
  ProviderVerdict verdict = Classify(backend_->provider(), response->status, response->body,
                                     response->Header("retry-after"), now);
  v1::PushResult result;
  result.set_outcome(verdict.outcome);
  result.set_provider_status(response->status);
  result.set_reason(verdict.reason);
  if (verdict.token_invalid_since) {
    *result.mutable_token_invalid_since() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
            absl::ToUnixNanos(*verdict.token_invalid_since));
  }
  if (verdict.outcome == v1::ACCEPTED) {
    result.set_provider_message_id(verdict.message_id.empty() ? backend_->MessageId(*response)
                                                              : verdict.message_id);
    backend_->OnAccepted();
  }
  if (verdict.credential_problem) {
    if (!attempt->auth_retried && backend_->OnAuthRejected(verdict.reason, now)) {
      attempt->auth_retried = true;
      Try(attempt);
      return;
    }
    log::Get("pusher")->error("client={} credential refused by provider: status={} reason={}",
                              name_, response->status, verdict.reason);
    Finish(attempt, std::move(result));
    return;
  }
  if (verdict.retryable) {
    RetryOrGiveUp(attempt, std::move(result), verdict.retry_after);
    return;
  }
  Finish(attempt, std::move(result));
}

void RetryingClient::RetryOrGiveUp(const std::shared_ptr<Attempt>& attempt, v1::PushResult last,
                                   std::optional<absl::Duration> retry_after) {
  absl::Time now = clock_.Now();
  std::optional<absl::Duration> delay =
      policy_.NextDelay(attempt->attempts, retry_after, now, attempt->deadline, Random01());
  if (!delay) {
    last.set_outcome(v1::RETRY_LATER);
    if (retry_after) *last.mutable_retry_after() = ToProto(*retry_after);
    Finish(attempt, std::move(last));
    return;
  }
  log::Get("pusher")->debug("client={} request_id={} retry in {} after: {}", name_,
                            attempt->request.request_id(), absl::FormatDuration(*delay),
                            last.reason());
  scheduler_.RunAt(now + *delay, [this, attempt] { Try(attempt); });
}

void RetryingClient::Finish(const std::shared_ptr<Attempt>& attempt,
                            absl::StatusOr<v1::PushResult> result) {
  if (result.ok()) {
    result->set_request_id(attempt->request.request_id());
    result->set_attempts(attempt->attempts);
    size_t o = static_cast<size_t>(result->outcome());
    if (o < outcomes_.size() && outcomes_[o] != nullptr) outcomes_[o]->Inc();
  }
  latency_.Observe(absl::ToDoubleSeconds(clock_.Now() - attempt->started));
  ResultCallback done = std::move(attempt->done);
  done(std::move(result));
  // seq_cst with drain_waiters_ below: either Drain sees this count or this sees its waiter.
  finished_.fetch_add(1);
  if (drain_waiters_.load() != 0) absl::MutexLock wake(&drain_mu_);  // re-checks its condition
}

std::string RetryingClient::Problem() const { return backend_->Problem(); }

void RetryingClient::Drain(absl::Duration timeout) {
  absl::Time until = absl::Now() + timeout;
  http_->Drain(timeout);
  drain_waiters_.fetch_add(1);
  {
    absl::MutexLock lock(&drain_mu_);
    auto idle = [this] { return finished_.load() >= started_.load(); };
    drain_mu_.AwaitWithDeadline(absl::Condition(&idle), until);
  }
  drain_waiters_.fetch_sub(1);
}

}  // namespace pushgate::pusher
