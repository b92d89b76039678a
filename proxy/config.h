// pushgate-proxy's configuration: one TOML file (see `pushgate-proxy --dump-default`), overridden
// by PUSHGATE_<SECTION>_<KEY> environment variables. The struct's initial values are the defaults.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/log.h"
#include "proxy/core/transport.h"
#include "proxy/sofia/sip_proxy.h"

namespace pushgate::proxy {

struct ProxyConfig {
  // [sip]
  std::vector<std::string> listen = {"udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"};
  std::vector<std::string> advertise;
  std::string tls_certificate_dir;
  std::string backend;
  std::vector<std::string> trusted_backends;
  std::vector<std::string> domains = {"*"};
  bool insert_domain = false;
  std::string masquerade_secret;
  std::string masquerade_secret_file;
  absl::Duration t1 = absl::Milliseconds(500);
  absl::Duration transaction_timeout = absl::Seconds(32);
  int64_t max_pending_registers = 100000;
  absl::Duration drain_timeout = absl::Seconds(10);
  // [registrar]
  absl::Duration min_expires = absl::Seconds(60);
  absl::Duration max_expires = absl::Hours(24);
  absl::Duration default_expires = absl::Hours(1);
  int max_contacts_per_aor = 10;
  int max_contacts_per_register = 5;
  // [store]
  std::string store_kind = "memory";
  std::string redis_address = "tcp://127.0.0.1:6379";
  std::string redis_username;
  std::string redis_password;
  int redis_db = 0;
  absl::Duration redis_op_timeout = absl::Seconds(1);
  std::string redis_key_prefix = "pushgate:";
  int store_retry_after = 5;
  // [push]
  std::string push_target = "dns:///127.0.0.1:50061";
  std::string push_api_key_file;
  absl::Duration push_timeout = absl::Seconds(5);
  bool push_send_110 = true;
  std::string push_legacy_apns_team;
  // [fork]
  absl::Duration fork_call_timeout = absl::Seconds(90);
  absl::Duration fork_push_delay_voip = absl::ZeroDuration();
  absl::Duration fork_push_delay_other = absl::Seconds(3);
  absl::Duration fork_alert_repeat_interval = absl::ZeroDuration();
  // [admin]
  std::string admin_listen = "127.0.0.1:9090";
  bool admin_bindings = false;
  // [log]
  log::LogConfig log;
  // [limits]
  absl::Duration timer_c = absl::Seconds(180);
  int64_t max_message_size = int64_t{64} * 1024;
  absl::Duration connection_idle_timeout = absl::Seconds(120);
  absl::Duration message_timeout = absl::Seconds(20);
  int64_t max_header_lines = 256;
  int64_t max_connections = 2048;
  int64_t max_connections_per_source = 64;
  int64_t rate_limit_requests = 30;
  absl::Duration rate_limit_window = absl::Seconds(2);
  absl::Duration rate_limit_block = absl::Seconds(120);
  int64_t rate_limit_sources = 100000;
  bool rate_limit_silent = false;
};

// The schema of every key, pointing into `config`.
config::Schema MakeProxySchema(ProxyConfig* config);

// Parses "udp:0.0.0.0:5060", "tls:[::]:5061" (transport:host:port, IPv6 in brackets).
absl::StatusOr<TransportInfo> ParseTransportAddress(absl::string_view text);
// Parses "host:port" / "[v6]:port" (the admin listener).
absl::StatusOr<std::pair<std::string, int>> ParseHostPort(absl::string_view text);

// What BuildSipProxyOptions decided about the masquerade secret, for main to log.
enum class SecretSource { kConfigured, kFile, kGenerated };

// Checks cross-key rules and builds the SIP proxy's options. Errors name the key:
// "sip.listen: \"udp:1.2.3.4\" is not transport:host:port".
absl::StatusOr<sofia::SipProxyOptions> BuildSipProxyOptions(const ProxyConfig& config,
                                                            SecretSource* secret_source);

}  // namespace pushgate::proxy
