#include "pusher/service/pusher_service.h"

#include <deque>
#include <mutex>

#include "absl/strings/match.h"
#include "common/log.h"

namespace pushgate::pusher {
namespace {

// One SendStream call. Results are written one at a time in completion order; reading pauses
// while too many pushes are in flight; Finish comes only when the client half-closed (or the
// call was cancelled) and every push it sent has been answered, so no callback outlives the
// reactor.
class StreamReactor final : public grpc::ServerBidiReactor<v1::PushRequest, v1::PushResult> {
 public:
  StreamReactor(PusherService& service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {
    auto client = service_.Identify(context_);
    if (!client.ok()) {
      Finish(ToGrpcStatus(client.status()));
      finished_ = true;
      return;
    }
    client_ = *client;
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    std::unique_lock lock(mu_);
    if (!ok) {
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    ++in_flight_;
    v1::PushRequest request = std::move(incoming_);
    incoming_.Clear();
    bool keep_reading = in_flight_ < service_.options().max_in_flight_per_stream;
    if (!keep_reading) read_paused_ = true;
    lock.unlock();
    // Errors come as results (ErrorResult): the callback needs neither the id nor an allocation.
    service_.handler().Handle(
        std::move(request), client_, service_.DeadlineOf(context_),
        [this](absl::StatusOr<v1::PushResult> result) { OnResult(*std::move(result)); },
        /*errors_as_results=*/true);
    if (keep_reading) StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    outgoing_.pop_front();
    if (!ok) write_failed_ = true;
    WriteNextLocked();
    MaybeFinishLocked();
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    MaybeFinishLocked();
  }

  void OnDone() override { delete this; }

 private:
  void OnResult(v1::PushResult result) {
    bool resume_read = false;
    {
      std::lock_guard lock(mu_);
      --in_flight_;
      if (!cancelled_ && !write_failed_) {
        outgoing_.push_back(std::move(result));
        WriteNextLocked();
      }
      if (read_paused_ && in_flight_ < service_.options().max_in_flight_per_stream / 2 &&
          !reads_done_ && !cancelled_) {
        read_paused_ = false;
        resume_read = true;
      }
      MaybeFinishLocked();
    }
    if (resume_read) StartRead(&incoming_);
  }

  void WriteNextLocked() {
    if (writing_ || outgoing_.empty() || cancelled_ || write_failed_) return;
    writing_ = true;
    // More results already wait: let gRPC buffer this one (a hinted write completes at once
    // and is sent with the next unhinted one, the last of the queue), so a burst of results
    // leaves in one write instead of one syscall and one HTTP/2 frame flush per result.
    // A queue of more than one exists only while a write is in progress, so hinted writes start
    // only from OnWriteDone, on gRPC's own thread; a write started elsewhere (OnResult, on the
    // pool's thread) is never hinted. Hinted first writes from another thread (a grpc::Alarm
    // callback) left streams stalled in an experiment.
    grpc::WriteOptions options;
    if (outgoing_.size() > 1) options.set_buffer_hint();
    StartWrite(&outgoing_.front(), options);
  }

  void MaybeFinishLocked() {
    if (finished_ || in_flight_ > 0 || writing_) return;
    if (cancelled_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
    } else if (write_failed_) {
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "writing a result failed"));
    } else if (reads_done_ && outgoing_.empty()) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  PusherService& service_;
  grpc::CallbackServerContext* context_;
  const ApiKeyEntry* client_ = nullptr;
  v1::PushRequest incoming_;
  std::mutex mu_;
  std::deque<v1::PushResult> outgoing_;
  int in_flight_ = 0;
  bool writing_ = false;
  bool reads_done_ = false;
  bool read_paused_ = false;
  bool cancelled_ = false;
  bool write_failed_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

PusherService::PusherService(PushHandler& handler, const Authorizer& authorizer, const Clock& clock,
                             ServiceOptions options)
    : handler_(handler), authorizer_(authorizer), clock_(clock), options_(options) {}

absl::StatusOr<const ApiKeyEntry*> PusherService::Identify(
    grpc::CallbackServerContext* context) const {
  std::optional<std::string> api_key;
  const auto& metadata = context->client_metadata();
  if (auto it = metadata.find("x-api-key"); it != metadata.end()) {
    api_key = std::string(it->second.data(), it->second.size());
  } else if (auto auth_it = metadata.find("authorization"); auth_it != metadata.end()) {
    std::string value(auth_it->second.data(), auth_it->second.size());
    constexpr absl::string_view kBearer = "Bearer ";
    if (value.size() > kBearer.size() &&
        absl::EqualsIgnoreCase(absl::string_view(value).substr(0, kBearer.size()), kBearer)) {
      api_key = value.substr(kBearer.size());
    }
  }
  std::optional<std::string> cert_name;
  auto auth = context->auth_context();
  if (auth && auth->IsPeerAuthenticated()) {
    auto names = auth->FindPropertyValues("x509_common_name");
    if (!names.empty()) cert_name = std::string(names.front().data(), names.front().size());
  }
  return authorizer_.Authenticate(api_key, cert_name);
}

absl::Time PusherService::DeadlineOf(grpc::CallbackServerContext* context) const {
  absl::Time now = clock_.Now();
  absl::Time deadline = absl::FromChrono(context->deadline());
  if (deadline == absl::InfiniteFuture() || deadline > now + options_.max_deadline) {
    // No deadline (or a huge one): ours, so a push never waits forever.
    return now +
           (deadline == absl::InfiniteFuture() ? options_.default_deadline : options_.max_deadline);
  }
  return deadline;
}

grpc::ServerUnaryReactor* PusherService::Send(grpc::CallbackServerContext* context,
                                              const v1::PushRequest* request,
                                              v1::PushResult* reply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto client = Identify(context);
  if (!client.ok()) {
    reactor->Finish(ToGrpcStatus(client.status()));
    return reactor;
  }
  handler_.Handle(*request, *client, DeadlineOf(context),
                  [reactor, reply](absl::StatusOr<v1::PushResult> result) {
                    if (!result.ok()) {
                      reactor->Finish(ToGrpcStatus(result.status()));
                      return;
                    }
                    *reply = *std::move(result);
                    reactor->Finish(grpc::Status::OK);
                  });
  return reactor;
}

grpc::ServerBidiReactor<v1::PushRequest, v1::PushResult>* PusherService::SendStream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(*this, context);
}

}  // namespace pushgate::pusher
