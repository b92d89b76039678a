#include "pusher/service/pusher_service.h"

#include <deque>
#include <mutex>

#include "absl/strings/match.h"
#include "common/log.h"
#include "pusher/core/request_wire.h"

namespace pushgate::pusher {
namespace {

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::string bytes;
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return bytes;
  bytes.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

grpc::ByteBuffer Serialize(const v1::PushResult& result) {
  grpc::Slice slice(result.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

// One SendStream call. Results are written one at a time in completion order; reading pauses
// while too many pushes are in flight; Finish comes only when the client half-closed (or the
// call was cancelled) and every push it sent has been answered, so no callback outlives the
// reactor. A request that does not parse is answered on the stream as a REJECTED result whose
// reason names the field (ParsePushRequest), with its request_id when that could be read.
class StreamReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
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
    const std::string wire = Flatten(incoming_);
    incoming_.Clear();
    // Unwritten results count: a client that does not read its results stops being read.
    bool keep_reading = BacklogLocked() < service_.options().max_in_flight_per_stream;
    if (!keep_reading) read_paused_ = true;
    lock.unlock();
    absl::StatusOr<v1::PushRequest> request = ParsePushRequest(wire);
    if (!request.ok()) {
      OnResult(PushHandler::ErrorResult(PeekRequestId(wire), request.status()));
      if (keep_reading) StartRead(&incoming_);
      return;
    }
    // Errors come as results (ErrorResult): the callback needs neither the id nor an allocation.
    service_.handler().Handle(
        *std::move(request), client_, service_.DeadlineOf(context_),
        [this](const absl::StatusOr<v1::PushResult>& result) { OnResult(*result); },
        /*errors_as_results=*/true);
    if (keep_reading) StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    bool resume_read = false;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      outgoing_.pop_front();
      if (!ok) write_failed_ = true;
      WriteNextLocked();
      resume_read = ShouldResumeReadLocked();
      MaybeFinishLocked();
    }
    if (resume_read) StartRead(&incoming_);
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    MaybeFinishLocked();
  }

  void OnDone() override { delete this; }

 private:
  void OnResult(const v1::PushResult& result) {
    bool resume_read = false;
    {
      std::lock_guard lock(mu_);
      --in_flight_;
      if (!cancelled_ && !write_failed_) {
        outgoing_.push_back(Serialize(result));
        WriteNextLocked();
      }
      resume_read = ShouldResumeReadLocked();
      MaybeFinishLocked();
    }
    if (resume_read) StartRead(&incoming_);
  }

  // Pushes in flight plus results not yet written to the client.
  int BacklogLocked() const { return in_flight_ + static_cast<int>(outgoing_.size()); }

  // Reading resumes (once) when the backlog fell to half the limit.
  bool ShouldResumeReadLocked() {
    if (!read_paused_ || reads_done_ || cancelled_ || write_failed_ ||
        BacklogLocked() >= service_.options().max_in_flight_per_stream / 2) {
      return false;
    }
    read_paused_ = false;
    return true;
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
  grpc::ByteBuffer incoming_;
  std::mutex mu_;
  std::deque<grpc::ByteBuffer> outgoing_;
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
                                              const grpc::ByteBuffer* request,
                                              grpc::ByteBuffer* reply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto client = Identify(context);
  if (!client.ok()) {
    reactor->Finish(ToGrpcStatus(client.status()));
    return reactor;
  }
  absl::StatusOr<v1::PushRequest> parsed = ParsePushRequest(Flatten(*request));
  if (!parsed.ok()) {
    reactor->Finish(ToGrpcStatus(parsed.status()));
    return reactor;
  }
  handler_.Handle(*std::move(parsed), *client, DeadlineOf(context),
                  [reactor, reply](absl::StatusOr<v1::PushResult> result) {
                    if (!result.ok()) {
                      reactor->Finish(ToGrpcStatus(result.status()));
                      return;
                    }
                    *reply = Serialize(*result);
                    reactor->Finish(grpc::Status::OK);
                  });
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* PusherService::SendStream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(*this, context);
}

}  // namespace pushgate::pusher
