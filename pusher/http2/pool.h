// HTTP/2 client connection pool (nghttp2 over OpenSSL, driven by a libevent loop).
//
// One Pool talks to one origin (https://host:port) with one TLS identity; the APNs and FCM
// clients create one per (provider, credential, environment).
//
// Design (after nghttp2's examples/libevent-client.c): nghttp2 never touches the socket. Each
// connection is a bufferevent_openssl; bytes read are fed to nghttp2_session_mem_recv and
// nghttp2_session_mem_send is drained into the bufferevent's output.
//
// Parts (each in its own file): Call (one request's state), Connection (one TLS connection and
// its nghttp2 session; it reports to the pool through ConnectionOwner), Resolver (evdns and the
// nameserver rotation), ReconnectDelay (backoff.h), IntrusiveList (the queue and the deadlines).
// This file's Pool::Impl keeps the inbox, the queue, dispatch, deadlines, metrics and drain.
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
//    streams lost with the connection fail with UNAVAILABLE and FailureReason kConnectionLost
//    or kStreamReset (MayHaveBeenDelivered): a request is never sent twice when the server may
//    have processed it;
//  - TLS failures (certificate verification, handshake, ALPN without h2) are not transient:
//    queued requests fail at once with UNAVAILABLE (kTlsFailure) naming the cause, and so do new
//    requests until a (backed-off) reconnection attempt succeeds;
//  - a request whose deadline passes fails with DEADLINE_EXCEEDED (kDeadlineBeforeSent or
//    kDeadlineAfterSent; its stream, if opened, is reset with CANCEL).
//  - an idle connection (nothing received for ping_interval) is PINGed; no ACK within
//    min(ping_interval, 20 s) drops it.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pusher/http2/client.h"
#include "pusher/http2/options.h"
#include "pusher/http2/origin.h"

namespace pushgate::http2 {

class Pool final : public Client {
 public:
  // Validates the URL and options, loads the TLS material (clear errors) and starts the loop
  // thread. Connections are opened on demand, beyond min_connections opened at once.
  static absl::StatusOr<std::unique_ptr<Pool>> Create(PoolOptions options);

  // Stops the loop; pending requests fail with UNAVAILABLE "pool shut down" (kShutdown).
  ~Pool() override;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Thread-safe, never blocks. A full queue answers RESOURCE_EXHAUSTED "queue full (N requests)"
  // (kQueueFull).
  void Submit(Request request, ResponseCallback callback) override;

  // Waits until no request is queued or in flight (including ones submitted meanwhile), or the
  // timeout passed. Must not be called from a callback.
  void Drain(absl::Duration timeout) override;

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

}  // namespace pushgate::http2
