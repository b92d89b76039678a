// pushgate-pusher: the push-sending gRPC service. Flags live here only.
#include <iostream>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/admin_http.h"
#include "common/config.h"
#include "common/log.h"
#include "common/shutdown.h"
#include "pusher/core/config.h"
#include "pusher/service/server.h"

namespace {

constexpr char kUsage[] =
    "usage: pushgate-pusher [--config FILE] [--dump-default]\n"
    "  --config FILE    TOML configuration (every key: --dump-default); PUSHGATE_<SECTION>_<KEY>\n"
    "                   environment variables override it\n"
    "  --dump-default   print the complete default configuration and exit\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace pushgate;  // NOLINT(google-build-using-namespace): main only
  ShutdownWatcher shutdown;  // before any thread starts
  // Debian builds Abseil without NDEBUG, so every absl::Mutex lock (gRPC's included) runs the
  // debug-only deadlock detector: a global graph under a global lock, a few percent of the CPU
  // of a push. Lock order is what tests and TSan check, not production.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  std::string config_path;
  bool dump = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--dump-default") {
      dump = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "pushgate-pusher: unknown argument '" << arg << "'\n" << kUsage;
      return config::kConfigErrorExitCode;
    }
  }

  pusher::PusherConfig cfg;
  config::Schema schema("pushgate-pusher");
  pusher::AddToSchema(schema, &cfg);
  if (dump) {
    std::cout << config::Dump(schema);
    return 0;
  }
  absl::Status status = config::Load(schema, config_path, config::ProcessEnv());
  if (status.ok()) status = pusher::ValidateConfig(cfg);
  if (status.ok()) status = log::Init(cfg.log);
  if (!status.ok()) {
    std::cerr << "pushgate-pusher: configuration error: " << status.message() << "\n";
    return config::kConfigErrorExitCode;
  }
  auto logger = log::Get("pusher");

  auto server = pusher::PusherServer::Create(cfg, RealClock::Get());
  if (!server.ok()) {
    logger->critical("cannot start: {}", server.status().message());
    return config::kConfigErrorExitCode;
  }
  auto port = (*server)->Start();
  if (!port.ok()) {
    logger->critical("cannot start: {}", port.status().message());
    return 1;
  }

  AdminServer admin(
      metrics::Registry::Default(), [] { return std::string(); },
      [&server] { return (*server)->Problems(); });
  if (!cfg.admin.listen.empty()) {
    std::string host;
    int admin_port = 0;
    status = pusher::ParseHostPort(cfg.admin.listen, &host, &admin_port);
    auto bound = status.ok() ? admin.Start(host, admin_port) : absl::StatusOr<int>(status);
    if (!bound.ok()) {
      logger->critical("admin HTTP: {}", bound.status().message());
      return 1;
    }
    logger->info("admin HTTP on {}:{} (/metrics /healthz /readyz)", host, *bound);
  }
  std::string problems = (*server)->Problems();
  if (!problems.empty()) logger->warn("serving with unusable credentials: {}", problems);

  shutdown.Start([&server](int) {
    // Let pushes in flight get their verdict; RPCs still running after 20 s are cancelled.
    (*server)->Shutdown(absl::Seconds(20));
  });
  (*server)->Wait();
  admin.Stop();
  logger->info("stopped");
  return 0;
}
