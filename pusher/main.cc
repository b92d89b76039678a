// pushgate-pusher: the push-sending gRPC service. Flags live here only.
#include <iostream>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/admin_http.h"
#include "common/config.h"
#include "common/log.h"
#include "common/shutdown.h"
#include "pusher/core/config.h"
#include "pusher/service/server.h"

namespace pushgate::pusher {
namespace {

constexpr char kUsage[] =
    "usage: pushgate-pusher [--config FILE] [--dump-default]\n"
    "  --config FILE    TOML configuration (every key: --dump-default); PUSHGATE_<SECTION>_<KEY>\n"
    "                   environment variables override it\n"
    "  --dump-default   print the complete default configuration and exit\n";

struct CommandLine {
  std::string config_path;
  bool dump = false;
};

// The command line; an exit code when the program must stop here (--help, a bad argument).
std::optional<int> ParseCommandLine(int argc, char** argv, CommandLine* out) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      out->config_path = argv[++i];
    } else if (arg == "--dump-default") {
      out->dump = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "pushgate-pusher: unknown argument '" << arg << "'\n" << kUsage;
      return config::kConfigErrorExitCode;
    }
  }
  return std::nullopt;
}

// Starts the admin HTTP server when admin.listen is set.
absl::Status StartAdmin(const PusherConfig& cfg, AdminServer& admin) {
  if (cfg.admin.listen.empty()) return absl::OkStatus();
  std::string host;
  int admin_port = 0;
  absl::Status status = ParseHostPort(cfg.admin.listen, &host, &admin_port);
  auto bound = status.ok() ? admin.Start(host, admin_port) : absl::StatusOr<int>(status);
  if (!bound.ok()) return bound.status();
  log::Get("pusher")->info("admin HTTP on {}:{} (/metrics /healthz /readyz)", host, *bound);
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  ShutdownWatcher shutdown;  // before any thread starts
  // Debian builds Abseil without NDEBUG, so every absl::Mutex lock (gRPC's included) runs the
  // debug-only deadlock detector: a global graph under a global lock, a few percent of the CPU
  // of a push. Lock order is what tests and TSan check, not production.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  CommandLine cmd;
  if (std::optional<int> exit_code = ParseCommandLine(argc, argv, &cmd)) return *exit_code;
  PusherConfig cfg;
  config::Schema schema("pushgate-pusher");
  AddToSchema(schema, &cfg);
  if (cmd.dump) {
    std::cout << config::Dump(schema);
    return 0;
  }
  absl::Status status = config::Load(schema, cmd.config_path, config::ProcessEnv());
  if (status.ok()) status = ValidateConfig(cfg);
  if (status.ok()) status = log::Init(cfg.log);
  if (!status.ok()) {
    std::cerr << "pushgate-pusher: configuration error: " << status.message() << "\n";
    return config::kConfigErrorExitCode;
  }
  auto logger = log::Get("pusher");

  auto server = PusherServer::Create(cfg, RealClock::Get());
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
  if (status = StartAdmin(cfg, admin); !status.ok()) {
    logger->critical("admin HTTP: {}", status.message());
    return 1;
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

}  // namespace
}  // namespace pushgate::pusher

int main(int argc, char** argv) { return pushgate::pusher::Main(argc, argv); }
