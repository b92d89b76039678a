// Configuration of the HTTP/2 client: TLS identity and trust, connection pool sizing and timing.
// Plain values, validated by Pool::Create (and CreateClientContext for the TLS part).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace pushgate::http2 {

struct TlsOptions {
  std::string ca_file;  // PEM bundle; "" = system store
  bool verify_peer = true;
  // Certificate authentication (APNs): PEM certificate (chain) and key, both or neither.
  std::string client_cert_file, client_key_file;
  // Name used for SNI and for the certificate check instead of the URL host.
  std::string server_name_override;
};

struct PoolOptions {
  std::string base_url;  // https://host[:port] (default port 443)
  TlsOptions tls;
  int max_connections = 4;
  // Connections kept open even without requests, from the start: the first push does not wait
  // for DNS, TCP and TLS, and a provider that cannot be reached (or refuses the certificate)
  // shows in the logs at once. Reopened with the reconnection backoff. 0..max_connections.
  int min_connections = 0;
  size_t max_queue = 10000;
  absl::Duration connect_timeout = absl::Seconds(10);  // TCP + TLS + server SETTINGS
  absl::Duration ping_interval = absl::Seconds(60);
  absl::Duration reconnect_backoff_initial = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(30);
  std::string name;  // for logs and metrics
  // Resolver configuration (nameservers, search domains). They are asked one at a time in the
  // listed order, the next one after a failed lookup (evdns would spread queries over all of
  // them, and a container's file lists the host's resolver, which does not know the names of
  // other containers, after the container network's own).
  std::string resolv_conf = "/etc/resolv.conf";
  // Header names (lower-case) whose values change with every request (APNs: apns-id): sent as
  // HPACK literals that are never indexed, so they do not push the headers that repeat (the
  // authorization token) out of the compression table of both ends.
  std::vector<std::string> unindexed_headers;
};

}  // namespace pushgate::http2
