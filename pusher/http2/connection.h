// One TLS connection carrying one nghttp2 client session (after nghttp2's libevent-client.c:
// nghttp2 never touches the socket; bytes read from the bufferevent_openssl are fed to
// nghttp2_session_mem_recv and nghttp2_session_mem_send is drained into its output).
//
// A connection opens (DNS, TCP, TLS with ALPN h2, the server's SETTINGS), carries the streams
// the owner starts on it, keeps itself alive with PINGs and, when it fails, decides the fate of
// each stream: never sent or provably not processed (above a GOAWAY's last-stream-id, or
// REFUSED_STREAM) -> back to the owner's queue; otherwise failed as "may have been delivered".
//
// It reports to a ConnectionOwner (the pool), never to the pool's class: calls it finished or
// gave back, readiness and closure. Threads: the owner's loop thread only. Ownership: the owner
// owns connections; a connection owns the calls on its streams until it hands them back. After
// Fail() the owner keeps a closed connection alive until the current callback returned.
#pragma once

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "pusher/http2/call.h"
#include "pusher/http2/client.h"
#include "pusher/http2/options.h"
#include "pusher/http2/origin.h"

struct bufferevent;
struct event;
struct event_base;

namespace pushgate::http2 {

class Connection;
class Resolver;

// What a connection needs of its pool. Loop thread only.
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  // The server's SETTINGS arrived: the connection takes streams.
  virtual void OnConnectionReady(Connection* conn) = 0;
  // The connection closed (after giving back or failing its calls). `was_ready`: it had carried
  // requests; `transient`: false for TLS failures, which will not go away by reconnecting.
  virtual void OnConnectionClosed(Connection* conn, const absl::Status& reason, bool was_ready,
                                  bool transient) = 0;
  // Stream slots may have freed (or a replacement connection is wanted): dispatch soon.
  virtual void ScheduleDispatch() = 0;
  // A call handed to StartStream left the queue (it is in flight, or finished at once).
  virtual void OnLeftQueue() = 0;
  // A call that never reached the server, or that the server refused, goes back to the queue's
  // head. `replay`: it had been sent (counted in goaway_replays).
  virtual void Requeue(std::unique_ptr<Call> call, bool replay) = 0;
  // Completes an in-flight call with its result.
  virtual void Finish(std::unique_ptr<Call> call, Result result) = 0;
};

// The connection's fixed surroundings, owned by the pool and outliving its connections.
struct ConnectionEnv {
  event_base* base;
  Resolver* resolver;
  SSL_CTX* ssl_ctx;
  const Origin* origin;
  const PoolOptions* options;
};

class Connection final {
 public:
  enum class State { kConnecting, kAwaitingSettings, kReady, kClosed };

  Connection(const ConnectionEnv& env, ConnectionOwner& owner, uint64_t id)
      : env_(env), owner_(owner), id_(id) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts resolving and connecting; an error means nothing was registered with the loop.
  absl::Status Start();
  State state() const { return state_; }
  uint64_t id() const { return id_; }
  // Can carry new streams.
  bool Accepting() const { return state_ == State::kReady && !goaway_received_; }
  bool Opening() const {
    return state_ == State::kConnecting || state_ == State::kAwaitingSettings;
  }
  // Streams it can start now (the server's SETTINGS_MAX_CONCURRENT_STREAMS minus those open).
  size_t FreeSlots() const;
  // Opens a stream for the call (calls owner.OnLeftQueue()); sent at the next Flush().
  void StartStream(std::unique_ptr<Call> call);
  // Takes back a call whose deadline passed, resetting its stream (null if it is not here).
  std::unique_ptr<Call> Cancel(Call* call);
  // Writes what nghttp2 has to send (may close the connection).
  void Flush();
  // Closes the connection: its streams are requeued or failed, then the owner is told.
  void Fail(const absl::Status& reason, bool transient);

 private:
  static void ReadCb(bufferevent*, void* arg) noexcept { static_cast<Connection*>(arg)->OnRead(); }
  static void WriteCb(bufferevent*, void* arg) noexcept { static_cast<Connection*>(arg)->Flush(); }
  static void EventCb(bufferevent*, short what, void* arg) noexcept {
    static_cast<Connection*>(arg)->OnEvent(what);
  }
  static void ConnectTimeoutCb(int, short, void* arg) noexcept {
    static_cast<Connection*>(arg)->OnConnectTimeout();
  }
  static void PingTimerCb(int, short, void* arg) noexcept {
    static_cast<Connection*>(arg)->OnPingTimer();
  }

  // nghttp2 callbacks.
  static int OnFrameRecvCb(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept;
  static int OnFrameSendCb(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept;
  static int OnFrameNotSendCb(nghttp2_session*, const nghttp2_frame* frame, int error,
                              void* user) noexcept;
  static int OnHeaderCb(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                        size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                        void* user) noexcept;
  static int OnDataChunkCb(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                           size_t len, void* user) noexcept;
  static int OnStreamCloseCb(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user) noexcept;
  static ssize_t ReadBodyCb(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                            uint32_t* data_flags, nghttp2_data_source* source, void* user) noexcept;

  absl::Status PrepareSsl();
  void OnEvent(short what);
  void OnError();
  void OnConnected();
  bool CreateSession();
  void OnConnectTimeout();
  void OnRead();
  void OnPingTimer();
  void OnFrameRecv(const nghttp2_frame& frame);
  void OnSettings();
  void OnGoaway(const nghttp2_goaway& goaway);
  void OnFrameNotSend(const nghttp2_frame& frame, int error);
  void OnDataChunk(int32_t stream_id, absl::string_view data);
  void OnStreamClose(int32_t stream_id, uint32_t error_code);
  void FailStreams(const absl::Status& reason);

  Call* Find(int32_t stream_id) {
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  std::unique_ptr<Call> Extract(int32_t stream_id) {
    auto node = streams_.extract(stream_id);
    if (node.empty()) return nullptr;
    return std::move(node.mapped());
  }
  std::string TlsName() const;
  const std::string& authority() const { return env_.origin->authority; }
  const std::string& log_name() const { return env_.options->name; }

  const ConnectionEnv& env_;
  ConnectionOwner& owner_;
  const uint64_t id_;
  State state_ = State::kConnecting;
  SSL* ssl_ = nullptr;  // owned by bev_ once it exists
  bufferevent* bev_ = nullptr;
  nghttp2_session* session_ = nullptr;
  event* connect_timer_ = nullptr;
  event* ping_timer_ = nullptr;
  absl::Time last_recv_ = absl::Now();
  bool ping_outstanding_ = false;
  absl::Time ping_sent_;
  bool goaway_received_ = false;
  int32_t goaway_last_stream_id_ = INT32_MAX;
  absl::flat_hash_map<int32_t, std::unique_ptr<Call>> streams_;
  absl::flat_hash_set<int32_t> reset_streams_;  // reset by us, not yet closed by nghttp2
  std::shared_ptr<spdlog::logger> log_ = log::Get("pusher.http2");
};

}  // namespace pushgate::http2
