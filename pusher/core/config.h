// The pusher's configuration: one struct (defaults are the initial values), its schema for
// common/config.h (TOML file + PUSHGATE_<SECTION>_<KEY> environment), cross-field validation,
// and parsers for the compact list formats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/log.h"

namespace pushgate::pusher {

struct PusherConfig {
  struct Grpc {
    std::string listen = "127.0.0.1:50061";
    std::string tls_cert_file;  // PEM; TLS when set (with tls_key_file)
    std::string tls_key_file;
    std::string client_ca_file;  // mutual TLS: client certificates must chain to this CA
    // Plaintext on a non-loopback address needs this. Plaintext on loopback is always allowed.
    bool allow_insecure = false;
    std::string api_keys_file;  // lines "client-name api-key app1,app2|*"; "" = no API keys
    absl::Duration deadline_default = absl::Seconds(10);  // when the client sets none
    // A SendStream stops being read while this many of its pushes are in flight or answered
    // but not yet read by the client; HTTP/2 flow control then holds the client back.
    int stream_backlog = 2000;
  } grpc;
  struct Apns {
    std::vector<std::string> token_keys;    // "TEAMID:KEYID:/path/AuthKey_KEYID.p8"
    std::vector<std::string> certificates;  // "<bundle-id>:/path/cert.pem[:/path/key.pem]"
    std::string production_url = "https://api.push.apple.com";
    std::string sandbox_url = "https://api.sandbox.push.apple.com";
    absl::Duration token_refresh_age = absl::Minutes(40);
  } apns;
  struct Fcm {
    std::vector<std::string> service_accounts;  // paths to service-account JSON files
    std::string base_url = "https://fcm.googleapis.com";
    std::string token_uri_override;  // "" = the token_uri of each service-account file
  } fcm;
  struct Http2 {
    std::string ca_file;  // "" = the system trust store
    bool verify_peer = true;
    int max_connections_per_pool = 4;
    int min_connections_per_pool = 1;  // kept open from the start, even idle
    int max_queue_per_pool = 10000;
    absl::Duration connect_timeout = absl::Seconds(10);
    absl::Duration ping_interval = absl::Seconds(60);
    absl::Duration request_timeout = absl::Seconds(30);
  } http2;
  struct Retry {
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(30);
    int max_attempts = 5;
    double multiplier = 2.0;
    double jitter = 0.2;
  } retry;
  struct Idempotency {
    absl::Duration window = absl::Minutes(5);
    int64_t max_entries = 100000;
  } idempotency;
  struct Admin {
    std::string listen = "127.0.0.1:9101";  // "" = no admin HTTP server
  } admin;
  log::LogConfig log;
};

// Registers every key of `config` (sections grpc, apns, fcm, http2, retry, idempotency, admin,
// log), each documented with its default. `config` must outlive the schema.
void AddToSchema(config::Schema& schema, PusherConfig* config);

// Cross-field rules, after loading: TLS cert and key together; client_ca_file needs TLS;
// plaintext on a non-loopback listen address needs allow_insecure; every token_keys and
// certificates entry parses and no team id / bundle id appears twice; URLs are http(s)://host;
// initial_backoff <= max_backoff; listen addresses are host:port. Errors name the key/entry.
absl::Status ValidateConfig(const PusherConfig& config);

// "TEAMID:KEYID:/path/AuthKey.p8": team and key id are 10 characters A-Z/0-9; the path is the
// rest (it may contain ':').
struct TokenKeySpec {
  std::string team_id;
  std::string key_id;
  std::string key_file;
};
absl::StatusOr<TokenKeySpec> ParseTokenKeySpec(absl::string_view entry);

// "<bundle-id>:/path/cert.pem:/path/key.pem", or "<bundle-id>:/path/both.pem" when the PEM file
// holds the certificate and the key.
struct CertificateSpec {
  std::string bundle_id;
  std::string cert_file;
  std::string key_file;  // may equal cert_file
};
absl::StatusOr<CertificateSpec> ParseCertificateSpec(absl::string_view entry);

// The API keys file: one client per line, "client-name api-key app1,app2" or
// "client-name api-key *" (every app); '#' starts a comment; blank lines are skipped. Client
// names are unique, keys are unique and at least 16 characters. Apps are bundle ids (APNs) or
// project ids (FCM). Errors read "line N: ...".
inline constexpr size_t kMinApiKeyLength = 16;
struct ApiKeyEntry {
  std::string client;
  std::string key;
  bool all_apps = false;
  std::vector<std::string> apps;
  bool Allows(absl::string_view app) const;
};
absl::StatusOr<std::vector<ApiKeyEntry>> ParseApiKeysFile(absl::string_view text);

// "host:port" / "[v6]:port" -> host (no brackets) and port 0..65535.
absl::Status ParseHostPort(absl::string_view address, std::string* host, int* port);
// 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(absl::string_view host);

}  // namespace pushgate::pusher
