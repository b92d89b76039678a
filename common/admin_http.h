// The admin HTTP endpoint: /metrics (Prometheus text), /healthz (liveness), /readyz (readiness),
// and whatever GET routes the service adds (AddGet).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/metrics.h"

namespace httplib {
class Server;
}

namespace pushgate {

class AdminServer {
 public:
  // `live` and `ready` are polled per request from the admin thread; they must be thread-safe.
  // A check answers an empty string when fine, else the reason it is not.
  using Check = std::function<std::string()>;

  struct Reply {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
  };
  // Answers a GET from its query parameters; runs on an admin thread, so it must be thread-safe.
  using Handler = std::function<Reply(const std::map<std::string, std::string>& query)>;

  AdminServer(metrics::Registry& registry, Check live, Check ready);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds host:port (port 0 picks a free one) and serves on a background thread.
  // Returns the bound port.
  absl::StatusOr<int> Start(const std::string& host, int port);
  // Serves GET `path` with `handler`. Call before Start.
  void AddGet(std::string path, Handler handler);
  void Stop();

 private:
  metrics::Registry& registry_;
  Check live_;
  Check ready_;
  std::vector<std::pair<std::string, Handler>> routes_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace pushgate
