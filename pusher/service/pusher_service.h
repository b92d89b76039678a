// The gRPC face of the pusher: Send (unary) and SendStream (bidirectional), callback API.
#pragma once

#include <grpcpp/grpcpp.h>

#include "pusher/service/push_handler.h"
#include "pushgate/v1/pusher.grpc.pb.h"

namespace pushgate::pusher {

// absl and gRPC status codes match one to one; this is the one place that converts.
grpc::Status ToGrpcStatus(const absl::Status& status);

struct ServiceOptions {
  absl::Duration default_deadline = absl::Seconds(10);  // when the caller sets none
  absl::Duration max_deadline = absl::Minutes(1);
  // Reading pauses while a stream has this many pushes in flight or results its client has not
  // read yet (bounded memory: HTTP/2 flow control then holds the client back). grpc.stream_backlog.
  int max_in_flight_per_stream = 2000;
};

// The methods take the request's raw bytes (ParsePushRequest): a string field that is not UTF-8
// is answered INVALID_ARGUMENT naming the field, where protobuf's own parser would fail the
// whole call without saying why.
class PusherService final : public v1::Pusher::WithRawCallbackMethod_Send<
                                v1::Pusher::WithRawCallbackMethod_SendStream<v1::Pusher::Service>> {
 public:
  PusherService(PushHandler& handler, const Authorizer& authorizer, const Clock& clock,
                ServiceOptions options);

  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* request, grpc::ByteBuffer* reply) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SendStream(
      grpc::CallbackServerContext* context) override;

  // Identifies the caller of an RPC from its metadata and TLS peer.
  absl::StatusOr<const ApiKeyEntry*> Identify(grpc::CallbackServerContext* context) const;
  absl::Time DeadlineOf(grpc::CallbackServerContext* context) const;

  PushHandler& handler() { return handler_; }
  const ServiceOptions& options() const { return options_; }

 private:
  PushHandler& handler_;
  const Authorizer& authorizer_;
  const Clock& clock_;
  ServiceOptions options_;
};

}  // namespace pushgate::pusher
