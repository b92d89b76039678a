// HTTP/2 client connection pool (nghttp2 over OpenSSL, driven by a libevent loop).
//
// One Pool talks to one origin (https://host:port) with one TLS identity; the APNs and FCM
// clients create one per (provider, credential, environment).
//
// Design (after nghttp2's examples/libevent-client.c): nghttp2 never touches the socket. Each
// connection is a bufferevent_openssl; bytes read are fed to nghttp2_session_mem_recv and
// nghttp2_session_mem_send is drained into the bufferevent's output.
//
// Threads: every Pool owns one libevent loop thread (named after PoolOptions::name). All
// connection and stream state lives on that thread. Submit() may be called from any thread: it
// appends to a mutex-protected inbox and activates a user event on the loop. Callbacks run on
// the loop thread; they may call Submit() but must not block, destroy the Pool or call Drain().
//
// Request life cycle:
//  - queued in the pool (bounded by max_queue) until a connection has a free stream slot: the
//    slot count is the server's SETTINGS_MAX_CONCURRENT_STREAMS, read from the server's
//    SETTINGS (a connection carries no request before they arrived);
//  - when every connection is full and fewer than max_connections exist, one more is opened;
//  - a connection that fails or dies is replaced with exponential backoff; requests not yet sent
//    stay queued. Streams the server provably did not process (above the GOAWAY last-stream-id,
//    or REFUSED_STREAM) are replayed on another connection (Stats::goaway_replays); other
//    streams lost with the connection fail with UNAVAILABLE ("may have been delivered"): a
//    request is never sent twice when the server may have processed it;
//  - TLS failures (certificate verification, handshake, ALPN without h2) are not transient:
//    queued requests fail at once with UNAVAILABLE naming the cause, and so do new requests
//    until a (backed-off) reconnection attempt succeeds;
//  - a request whose deadline passes fails with DEADLINE_EXCEEDED (its stream, if opened, is
//    reset with CANCEL).
//  - an idle connection (nothing received for ping_interval) is PINGed; no ACK within
//    min(ping_interval, 20 s) drops it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pushgate::http2 {

struct Request {
  std::string method = "POST";
  std::string path;  // "/3/device/<token>"
  // Regular headers only (no pseudo-headers); names are sent lowercased.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Time deadline = absl::InfiniteFuture();
};

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // without pseudo-headers
  std::string body;
  // The first header with this name (case-insensitive), "" when absent.
  std::string Header(absl::string_view name) const;
};

// Called exactly once, on the pool's loop thread (or, for requests still pending when the Pool
// is destroyed, possibly on the destroying thread).
using ResponseCallback = std::function<void(absl::StatusOr<Response>)>;

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

class Pool {
 public:
  // Validates the URL and options, loads the TLS material (clear errors) and starts the loop
  // thread. Connections are opened on demand, beyond min_connections opened at once.
  static absl::StatusOr<std::unique_ptr<Pool>> Create(PoolOptions options);

  // Stops the loop; pending requests fail with UNAVAILABLE "pool shut down".
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Thread-safe, never blocks. A full queue answers RESOURCE_EXHAUSTED "queue full (N requests)".
  void Submit(Request request, ResponseCallback callback);

  // Waits until no request is queued or in flight (including ones submitted meanwhile), or the
  // timeout passed. Must not be called from a callback.
  void Drain(absl::Duration timeout);

  struct Stats {
    int connections;  // open or opening
    size_t queued;
    size_t in_flight;
    uint64_t goaway_replays;
  };
  Stats GetStats() const;

  class Impl;

 private:
  explicit Pool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parsed form of PoolOptions::base_url.
struct Origin {
  std::string host;  // without brackets for IPv6
  int port = 443;
  std::string authority;  // ":authority" value: host[:port], IPv6 bracketed
  bool host_is_ip = false;
};
absl::StatusOr<Origin> ParseBaseUrl(absl::string_view url);

}  // namespace pushgate::http2
