// PushClient over the pusher's gRPC API: async callback stub, a deadline per push, results
// handed to a poster (the proxy posts them onto its sofia loop), round-robin over every address
// the target resolves to ("dns:///pusher:50061"), so the pusher scales on its own.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>

#include "proxy/push/push_client.h"
#include "pushgate/v1/pusher.grpc.pb.h"

namespace pushgate::proxy {

struct GrpcPushClientOptions {
  std::string target = "dns:///127.0.0.1:50061";
  std::string api_key;  // sent as x-api-key when not empty
  bool tls = false;
  std::string ca_pem, cert_pem, key_pem;  // contents, not paths
};

class GrpcPushClient final : public PushClient {
 public:
  // `post` moves a completion onto the caller's loop; it must be thread-safe.
  using Poster = std::function<void(std::function<void()>)>;
  GrpcPushClient(const GrpcPushClientOptions& options, Poster post);
  ~GrpcPushClient() override;

  void Send(v1::PushRequest request, absl::Duration timeout, Callback done) override;
  // Waits until every push sent has completed, at most `timeout`.
  void Drain(absl::Duration timeout);

 private:
  struct Call;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Pusher::Stub> stub_;
  std::string api_key_;
  Poster post_;
  std::atomic<int> in_flight_{0};
};

}  // namespace pushgate::proxy
