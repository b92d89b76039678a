// Configuration of the pushgate-emulator executable: a TOML file (common/config.h), environment
// overrides and command-line flags all fill one EmulatorConfig, which turns into
// EmulatorOptions (reading the key files it names).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "pusher/emulator/emulator.h"

namespace pushgate::pusher::emulator {

struct EmulatorConfig {
  // [listen]
  std::string h2 = "127.0.0.1:0";       // host:port of the HTTP/2 TLS listener
  std::string control = "127.0.0.1:0";  // host:port of the HTTP/1.1 control endpoint, "off"
  int threads = 1;
  int64_t max_records = 200000;
  // [tls]
  std::string cert;       // PEM chain file; empty: generate a self-signed certificate
  std::string key;        // PEM key file
  std::string write_ca;   // write the certificate clients must trust here
  std::string client_ca;  // CA of APNs client certificates; empty: no certificate auth
  // [apns]
  std::vector<std::string> keys;         // "TEAMID:KEYID:/path/public.pem"
  std::vector<std::string> topics;       // "TEAMID:bundle.id"
  std::vector<std::string> cert_topics;  // "SUBJECT=topic1,topic2"
  std::vector<std::string> dead_tokens;
  bool strict_token_updates = false;
  // [fcm]
  std::vector<std::string> accounts;  // "client_email:/path/public.pem:project_id"
  std::vector<std::string> audiences = {"https://oauth2.googleapis.com/token"};
  int64_t token_expires_in_s = 3600;
  std::vector<std::string> fcm_dead_tokens;
  // [faults]
  Faults faults;
  // [log]
  std::string log_level = "info";
};

// The schema binding every key of `cfg` (service "pushgate-emulator").
config::Schema EmulatorSchema(EmulatorConfig* cfg);

// "host:port" / "[v6]:port" -> (host, port).
absl::StatusOr<std::pair<std::string, int>> ParseHostPort(absl::string_view s);

// Validates the config and reads the files it names.
absl::StatusOr<EmulatorOptions> OptionsFromConfig(const EmulatorConfig& cfg);

// `pushgate-emulator make-jwt ...`: credentials for manual tests and h2load runs.
//   make-jwt apns  --p8 FILE --team TEAMID --kid KEYID            ES256 provider token
//   make-jwt oauth --key FILE --email CLIENT_EMAIL [--aud URL] [--scope S]   RS256 assertion
// `args` are the arguments after "make-jwt"; `now_unix` is the iat.
absl::StatusOr<std::string> MakeJwtCommand(const std::vector<std::string>& args, int64_t now_unix);

}  // namespace pushgate::pusher::emulator
