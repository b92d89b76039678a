#include "proxy/push/grpc_push_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/metrics.h"

namespace pushgate::proxy {
namespace {

std::shared_ptr<grpc::ChannelCredentials> MakeCredentials(const GrpcPushClientOptions& o) {
  if (!o.tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = o.ca_pem;
  ssl.pem_cert_chain = o.cert_pem;
  ssl.pem_private_key = o.key_pem;
  return grpc::SslCredentials(ssl);
}

metrics::Counter& Errors(grpc::StatusCode code) {
  return metrics::Registry::Default().GetCounter(
      "pushgate_proxy_push_rpc_errors_total", "Push RPCs to the pusher that failed, by gRPC code.",
      {{"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}});
}

}  // namespace

struct GrpcPushClient::Call {
  grpc::ClientContext context;
  v1::PushRequest request;
  v1::PushResult result;
  Callback done;
};

GrpcPushClient::GrpcPushClient(const GrpcPushClientOptions& options, Poster post)
    : api_key_(options.api_key), post_(std::move(post)) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  // Re-resolve often enough that new pusher replicas get traffic soon after they appear.
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 5000);
  // gRPC's default backoff grows to 120 s: a pusher (or its DNS name) missing for a moment at
  // start-up would leave calls without pushes for minutes. Retry within seconds instead.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  channel_ = grpc::CreateCustomChannel(options.target, MakeCredentials(options), args);
  stub_ = v1::Pusher::NewStub(channel_);
  channel_->GetState(/*try_to_connect=*/true);  // resolve and connect before the first call
}

GrpcPushClient::~GrpcPushClient() { Drain(absl::Seconds(5)); }

void GrpcPushClient::Send(v1::PushRequest request, absl::Duration timeout, Callback done) {
  auto* call = new Call;
  call->request = std::move(request);
  call->done = std::move(done);
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  // A pusher that is (re)connecting gets the whole deadline to come back instead of the push
  // failing at once while the channel is in TRANSIENT_FAILURE.
  call->context.set_wait_for_ready(true);
  if (!api_key_.empty()) call->context.AddMetadata("x-api-key", api_key_);
  in_flight_.fetch_add(1);
  stub_->async()->Send(
      &call->context, &call->request, &call->result, [this, call](const grpc::Status& status) {
        absl::StatusOr<v1::PushResult> result;
        if (status.ok()) {
          result = std::move(call->result);
        } else {
          Errors(status.error_code()).Inc();
          result = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                status.error_message());
        }
        Callback cb = std::move(call->done);
        delete call;
        post_(
            [cb = std::move(cb), result = std::move(result)]() mutable { cb(std::move(result)); });
        in_flight_.fetch_sub(1);
      });
}

void GrpcPushClient::Drain(absl::Duration timeout) {
  absl::Time until = absl::Now() + timeout;
  while (in_flight_.load() > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
}

}  // namespace pushgate::proxy
