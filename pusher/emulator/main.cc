// pushgate-emulator: a local APNs / FCM v1 / OAuth2 server. Prints one machine-readable line
//   EMULATOR h2=127.0.0.1:PORT control=127.0.0.1:PORT
// once both listeners are bound, then serves until SIGTERM / SIGINT.
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/shutdown.h"
#include "pusher/emulator/emulator.h"
#include "pusher/emulator/emulator_config.h"

namespace {

using pushgate::pusher::emulator::EmulatorConfig;

struct FlagSpec {
  const char* flag;
  const char* section;
  const char* key;
  bool repeatable;
};

constexpr FlagSpec kFlags[] = {
    {"listen", "listen", "h2", false},
    {"control", "listen", "control", false},
    {"threads", "listen", "threads", false},
    {"max-records", "listen", "max_records", false},
    {"tls-cert", "tls", "cert", false},
    {"tls-key", "tls", "key", false},
    {"write-ca", "tls", "write_ca", false},
    {"client-ca", "tls", "client_ca", false},
    {"apns-key", "apns", "keys", true},
    {"apns-topic", "apns", "topics", true},
    {"cert-topics", "apns", "cert_topics", true},
    {"apns-dead-token", "apns", "dead_tokens", true},
    {"strict-token-updates", "apns", "strict_token_updates", false},
    {"fcm-account", "fcm", "accounts", true},
    {"oauth-audience", "fcm", "audiences", true},
    {"token-expires-in", "fcm", "token_expires_in_s", false},
    {"fcm-dead-token", "fcm", "dead_tokens", true},
    {"delay-ms", "faults", "delay_ms", false},
    {"fail-next", "faults", "fail_next", false},
    {"fail-status", "faults", "fail_status", false},
    {"retry-after", "faults", "retry_after_s", false},
    {"fail-target", "faults", "fail_target", false},
    {"goaway-after", "faults", "goaway_after_streams", false},
    {"goaway-limit", "faults", "goaway_limit", false},
    {"drop-after", "faults", "drop_after_streams", false},
    {"drop-limit", "faults", "drop_limit", false},
    {"max-concurrent-streams", "faults", "max_concurrent_streams", false},
    {"reject-alpn", "faults", "reject_alpn", false},
    {"log-level", "log", "level", false},
};

void Usage() {
  std::fprintf(stderr,
               "usage: pushgate-emulator [--config FILE] [--dump-default] [--FLAG=VALUE ...]\n"
               "       pushgate-emulator make-jwt apns --p8 FILE --team TEAMID --kid KEYID\n"
               "       pushgate-emulator make-jwt oauth --key FILE --email EMAIL [--aud URL]\n"
               "                                        [--scope SCOPE]\n"
               "Flags (each overrides the TOML key shown; repeatable ones accumulate):\n");
  for (const FlagSpec& f : kFlags) {
    std::fprintf(stderr, "  --%-24s %s.%s%s\n", f.flag, f.section, f.key,
                 f.repeatable ? " (repeatable)" : "");
  }
}

int MakeJwt(int argc, char** argv) {
  auto jwt = pushgate::pusher::emulator::MakeJwtCommand(
      std::vector<std::string>(argv + 2, argv + argc), absl::ToUnixSeconds(absl::Now()));
  if (!jwt.ok()) {
    std::fprintf(stderr, "pushgate-emulator: %s\n", std::string(jwt.status().message()).c_str());
    return pushgate::config::kConfigErrorExitCode;
  }
  std::printf("%s\n", jwt->c_str());
  return 0;
}

struct CommandLine {
  std::string config_path;
  std::map<std::string, std::vector<std::string>> flag_values;
};

// Splits the command line into --config and the other flags' values; an exit code when the
// program must stop here (--help, --dump-default, a malformed argument).
std::optional<int> ParseCommandLine(int argc, char** argv, const pushgate::config::Schema& schema,
                                    CommandLine* out) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      Usage();
      return 0;
    }
    if (arg == "--dump-default") {
      std::cout << pushgate::config::Dump(schema);
      return 0;
    }
    if (arg.rfind("--", 0) != 0) {
      std::fprintf(stderr, "unexpected argument '%s'\n", arg.c_str());
      Usage();
      return pushgate::config::kConfigErrorExitCode;
    }
    std::string name = arg.substr(2);
    std::string value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (name == "reject-alpn" || name == "strict-token-updates") {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::fprintf(stderr, "flag --%s needs a value\n", name.c_str());
      return pushgate::config::kConfigErrorExitCode;
    }
    if (name == "config") {
      out->config_path = value;
      continue;
    }
    out->flag_values[name].push_back(value);
  }
  return std::nullopt;
}

// Sets each flag's value over the configuration's (repeatable ones joined by commas).
absl::Status ApplyFlags(const std::map<std::string, std::vector<std::string>>& flag_values,
                        pushgate::config::Schema& schema) {
  for (const auto& [name, values] : flag_values) {
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& f : kFlags) {
      if (name == f.flag) spec = &f;
    }
    if (spec == nullptr) return absl::InvalidArgumentError("unknown flag --" + name);
    if (!spec->repeatable && values.size() > 1) {
      return absl::InvalidArgumentError("flag --" + name + " given more than once");
    }
    const auto* field = schema.Find(spec->section, spec->key);
    absl::Status s = field->set_from_env(absl::StrJoin(values, ","));
    if (!s.ok()) {
      return absl::InvalidArgumentError("--" + name + ": " + std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

// The configuration file, the environment and the flags, validated; logging set up.
absl::StatusOr<pushgate::pusher::emulator::EmulatorOptions> LoadOptions(
    const CommandLine& cmd, pushgate::config::Schema& schema, const EmulatorConfig& cfg) {
  absl::Status status =
      pushgate::config::Load(schema, cmd.config_path, pushgate::config::ProcessEnv());
  if (status.ok()) status = ApplyFlags(cmd.flag_values, schema);
  if (!status.ok()) return status;
  auto options = pushgate::pusher::emulator::OptionsFromConfig(cfg);
  if (!options.ok()) return options.status();
  pushgate::log::LogConfig log_config;
  log_config.level = cfg.log_level;
  status = pushgate::log::Init(log_config);
  if (!status.ok()) return status;
  return options;
}

// Marks the configured dead tokens, writes the CA file if asked, and prints the EMULATOR line.
absl::Status Announce(pushgate::pusher::emulator::Emulator& emulator, const EmulatorConfig& cfg,
                      const pushgate::pusher::emulator::EmulatorOptions& options,
                      const pushgate::pusher::emulator::BoundPorts& ports) {
  namespace emu = pushgate::pusher::emulator;
  for (const std::string& t : cfg.dead_tokens) emulator.MarkDead(emu::Provider::kApns, t);
  for (const std::string& t : cfg.fcm_dead_tokens) emulator.MarkDead(emu::Provider::kFcm, t);
  if (!cfg.write_ca.empty()) {
    std::ofstream out(cfg.write_ca, std::ios::trunc);
    out << emulator.ca_pem();
    if (!out) return absl::UnavailableError("cannot write " + cfg.write_ca);
  }
  auto host = [](const std::string& h) {
    return h.find(':') != std::string::npos ? "[" + h + "]" : h;
  };
  std::string line = "EMULATOR h2=" + host(options.h2_host) + ":" + std::to_string(ports.h2);
  if (ports.control >= 0) {
    line += " control=" + host(options.control_host) + ":" + std::to_string(ports.control);
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  namespace emu = pushgate::pusher::emulator;
  if (argc >= 2 && std::string(argv[1]) == "make-jwt") return MakeJwt(argc, argv);
  pushgate::ShutdownWatcher watcher;  // first: every thread inherits the blocked signals
  EmulatorConfig cfg;
  pushgate::config::Schema schema = emu::EmulatorSchema(&cfg);

  CommandLine cmd;
  if (std::optional<int> exit_code = ParseCommandLine(argc, argv, schema, &cmd)) {
    return *exit_code;
  }
  absl::StatusOr<emu::EmulatorOptions> options = LoadOptions(cmd, schema, cfg);
  if (!options.ok()) {
    std::fprintf(stderr, "pushgate-emulator: %s\n",
                 std::string(options.status().message()).c_str());
    return pushgate::config::kConfigErrorExitCode;
  }

  emu::Emulator emulator;
  auto ports = emulator.Start(*options);
  if (!ports.ok()) {
    std::fprintf(stderr, "pushgate-emulator: %s\n", std::string(ports.status().message()).c_str());
    return 1;
  }
  if (absl::Status s = Announce(emulator, cfg, *options, *ports); !s.ok()) {
    std::fprintf(stderr, "pushgate-emulator: %s\n", std::string(s.message()).c_str());
    return 1;
  }

  std::promise<int> stop;
  watcher.Start([&stop](int signo) { stop.set_value(signo); });
  int signo = stop.get_future().get();
  pushgate::log::Get("pusher.emulator")->info("event=stopping signal={}", signo);
  emulator.Stop();
  return 0;
}
