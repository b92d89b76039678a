// The pusher process minus flags: credentials and provider clients built from the config, the
// gRPC server (Pusher, grpc.health.v1, reflection), graceful shutdown.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "pusher/core/config.h"
#include "pusher/core/idempotency.h"
#include "pusher/provider/scheduler.h"
#include "pusher/service/auth.h"
#include "pusher/service/push_handler.h"
#include "pusher/service/pusher_service.h"
#include "pusher/service/router.h"

namespace pushgate::pusher {

class PusherServer {
 public:
  // Loads every credential. A credential that cannot be loaded does not stop the start: its
  // apps answer AUTH_FAILED with the reason and report NOT_SERVING on the health service
  // (under "apns:TEAMID", "apns_sandbox:TEAMID", "apns:bundle", "fcm:project"). Errors here
  // are about the service itself (unreadable api keys file, bad TLS files).
  static absl::StatusOr<std::unique_ptr<PusherServer>> Create(const PusherConfig& config,
                                                              const Clock& clock);
  ~PusherServer();

  // Listens on config.grpc.listen; returns the bound port (for ":0").
  absl::StatusOr<int> Start();
  // Stops accepting, lets RPCs in flight finish within `drain` (then cancels them), waits for
  // the provider clients. Thread-safe: a second call (e.g. the destructor's) waits for the
  // first to complete.
  void Shutdown(absl::Duration drain);
  // Blocks until Shutdown() completed, draining included (returns at once when Start() never
  // succeeded). The caller may destroy the server as soon as it returns.
  void Wait();

  // "" when every credential works, else the problems (for /readyz and logs).
  std::string Problems() const;
  const Router& router() const { return router_; }

 private:
  explicit PusherServer(const PusherConfig& config, const Clock& clock);
  absl::Status LoadCredentials();
  absl::Status LoadApnsTokenKeys();
  absl::Status LoadApnsCertificates();
  void LoadFcmServiceAccounts();
  // Stands for a credential that cannot be used (`what` failed with `status`): its pushes get
  // AUTH_FAILED; the problem is logged and recorded for Problems().
  std::shared_ptr<ProviderClient> Broken(const std::string& what, const absl::Status& status);
  void UpdateHealth();

  PusherConfig config_;
  const Clock& clock_;
  ThreadScheduler scheduler_;
  Router router_;
  std::vector<std::string> load_errors_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<IdempotencyCache> idempotency_;
  std::unique_ptr<PushHandler> handler_;
  std::unique_ptr<PusherService> service_;
  // server_ is set by Start() and reset by Shutdown(); health_mu_ keeps the health updater
  // (scheduler thread) from using it meanwhile.
  std::mutex health_mu_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // Shutdown state: Wait() returns only once Shutdown() finished (not when gRPC stopped and the
  // drain still runs), so that main() never destroys the server under a draining thread.
  std::mutex shutdown_mu_;
  std::condition_variable shutdown_cv_;
  bool started_ = false;
  bool shutdown_started_ = false;
  bool shutdown_done_ = false;
};

}  // namespace pushgate::pusher
