// pushgate-push: sends one push through a running pusher, or checks its health.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher::cli {

struct Options {
  std::string target = "127.0.0.1:50061";
  bool tls = false;
  std::string ca_file, cert_file, key_file;
  std::string api_key;  // or api_key_file
  std::string api_key_file;
  absl::Duration timeout = absl::Seconds(10);
  bool health = false;
  std::string health_service;  // "" = the whole server
  bool json = false;
  v1::PushRequest request;
};

// Exit codes.
inline constexpr int kExitAccepted = 0;  // push accepted / server SERVING
inline constexpr int kExitRejected = 1;  // any other verdict / NOT_SERVING
inline constexpr int kExitUsage = 2;     // bad command line
inline constexpr int kExitRpcError = 3;  // the call itself failed (unreachable, denied, ...)

// Parses argv (without argv[0]); INVALID_ARGUMENT naming the bad flag.
absl::StatusOr<Options> ParseArgs(const std::vector<std::string>& args);
std::string Usage();

// Human-readable (or JSON) rendering of a verdict.
std::string FormatResult(const v1::PushResult& result, bool json);

// Runs the command; prints to stdout/stderr; returns the exit code.
int Run(const Options& options);

}  // namespace pushgate::pusher::cli
