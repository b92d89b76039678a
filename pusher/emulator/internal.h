// Internals of the emulator shared by its source files: the shared state (records, faults,
// dead tokens, issued access tokens), the request handlers and the HTTP/2 server.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "pusher/core/jwt.h"
#include "pusher/emulator/emulator.h"

namespace pushgate::pusher::emulator::internal {

// What the TLS client certificate (certificate auth) grants, computed once per connection.
struct PeerAuth {
  bool has_cert = false;
  std::string subject;              // UID, else CN
  std::vector<std::string> topics;  // topics the certificate may push to
};

struct H2Request {
  std::string method;
  std::string path;
  std::string authority;
  std::vector<std::pair<std::string, std::string>> headers;  // regular headers, names lower case
  std::string body;
  uint64_t connection_id = 0;
  int32_t stream_id = 0;
  const PeerAuth* peer = nullptr;

  // The first header of that (lower case) name, or nullptr.
  const std::string* Header(absl::string_view name) const;
};

struct H2Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int delay_ms = 0;
};

class State {
 public:
  // Loads the configured public keys; fails on a key that does not parse.
  static absl::StatusOr<std::unique_ptr<State>> Create(const EmulatorOptions& options);

  const EmulatorOptions& options() const { return options_; }
  absl::Time Now() const { return clock_->Now(); }

  // --- faults
  Faults GetFaults() const;
  void SetFaults(const Faults& faults);
  struct FaultDecision {
    int status = 0;  // 0: answer normally
    int retry_after_s = 0;
  };
  FaultDecision TakeFault(Provider provider);
  int DelayMs() const { return delay_ms_.load(std::memory_order_relaxed); }
  // True when a connection that has begun `streams_begun` streams must GOAWAY now.
  bool TakeGoaway(int streams_begun);
  // True when a connection that has processed `streams_processed` streams must be dropped now.
  bool TakeDrop(int streams_processed);
  int MaxConcurrentStreams() const;
  bool RejectAlpn() const { return reject_alpn_.load(std::memory_order_relaxed); }

  // --- dead tokens
  void MarkDead(Provider provider, const std::string& token, absl::Time since);
  std::optional<absl::Time> DeadSince(Provider provider, const std::string& token) const;

  // --- credentials
  struct ApnsKeyEntry {
    ApnsKey key;
    pushgate::pusher::PKey pkey;
  };
  const ApnsKeyEntry* FindApnsKey(absl::string_view team, absl::string_view kid) const;
  struct FcmAccountEntry {
    FcmServiceAccount account;
    pushgate::pusher::PKey pkey;
  };
  const FcmAccountEntry* FindFcmAccount(absl::string_view client_email) const;
  // Verified APNs provider tokens: the JWT text -> (team, iat). Bounded.
  struct VerifiedApnsJwt {
    std::string team;
    int64_t iat = 0;
  };
  std::optional<VerifiedApnsJwt> CachedApnsJwt(const std::string& jwt) const;
  void CacheApnsJwt(const std::string& jwt, VerifiedApnsJwt v);
  // A newly verified provider token of team:kid issued at `iat`. False when
  // options.strict_token_updates and the previous new token is less than 20 minutes older.
  bool NoteNewApnsToken(const std::string& team_kid, int64_t iat);
  std::string IssueAccessToken(const FcmAccountEntry* account, absl::Time expiry);
  // The account an unexpired access token was issued to, or nullptr.
  const FcmAccountEntry* LookupAccessToken(const std::string& token, absl::Time now) const;

  // --- records and stats
  void Record(ReceivedRequest r);
  std::vector<ReceivedRequest> Received(uint64_t since) const;
  bool WaitForReceived(size_t n, absl::Duration timeout) const;
  nlohmann::json Stats() const;
  void Reset();

  std::atomic<uint64_t> next_connection_id{1};
  std::atomic<int64_t> connections_accepted{0};
  std::atomic<int64_t> connections_open{0};
  std::atomic<int64_t> tls_failures{0};
  std::atomic<int64_t> alpn_rejected{0};
  std::atomic<int64_t> goaways_sent{0};
  std::atomic<int64_t> connections_dropped{0};
  std::atomic<int64_t> streams_refused{0};

 private:
  explicit State(const EmulatorOptions& options);

  EmulatorOptions options_;
  const Clock* clock_;
  std::vector<ApnsKeyEntry> apns_keys_;
  std::vector<FcmAccountEntry> fcm_accounts_;

  mutable std::mutex faults_mu_;
  Faults faults_;
  int goaways_fired_ = 0;
  int drops_fired_ = 0;
  std::atomic<int> delay_ms_{0};
  std::atomic<bool> reject_alpn_{false};
  std::atomic<bool> goaway_armed_{false};
  std::atomic<bool> drop_armed_{false};

  mutable std::mutex dead_mu_;
  std::unordered_map<std::string, absl::Time> dead_apns_;
  std::unordered_map<std::string, absl::Time> dead_fcm_;

  mutable std::mutex cred_mu_;
  std::unordered_map<std::string, VerifiedApnsJwt> apns_jwt_cache_;
  std::unordered_map<std::string, int64_t> last_new_token_iat_;  // team:kid -> iat
  int64_t provider_tokens_seen_ = 0;
  int64_t access_tokens_issued_ = 0;
  struct IssuedToken {
    const FcmAccountEntry* account;
    absl::Time expiry;
  };
  std::unordered_map<std::string, IssuedToken> access_tokens_;

  mutable std::mutex rec_mu_;
  mutable std::condition_variable rec_cv_;
  std::deque<ReceivedRequest> records_;
  uint64_t next_seq_ = 1;
  uint64_t total_since_reset_ = 0;
  std::map<std::string, int64_t> by_path_;
  std::map<int, int64_t> by_status_;
  std::map<std::string, int64_t> by_reason_;
  std::map<uint64_t, int64_t> by_connection_;
  int64_t faults_injected_ = 0;
};

// Routes one complete request to the APNs / FCM / OAuth logic. Fills `rec` (everything but
// seq, time, connection and stream ids) and returns the answer.
H2Response HandleRequest(const H2Request& req, State& state, ReceivedRequest* rec);

// Path normalised for statistics: "/3/device/*", "/v1/projects/<p>/messages:send", "/token".
std::string StatsPath(absl::string_view path);

// Lower-case random UUID (version 4).
std::string RandomUuid();
bool IsUuid(absl::string_view s);

// TLS context for the h2 listener: TLS 1.2+, ALPN h2 only, optional client CA.
absl::StatusOr<SSL_CTX*> MakeServerTlsContext(const std::string& cert_pem,
                                              const std::string& key_pem,
                                              const std::string& client_ca_pem, State* state);
// A self-signed P-256 certificate for 127.0.0.1, ::1 and localhost: {cert_pem, key_pem}.
absl::StatusOr<std::pair<std::string, std::string>> GenerateSelfSigned();
// Reads the verified peer certificate of a finished handshake.
PeerAuth PeerAuthFromSsl(SSL* ssl, const EmulatorOptions& options);

// The HTTP/2 listener: N libevent loops sharing one port (SO_REUSEPORT).
class H2Server {
 public:
  H2Server(State* state, SSL_CTX* ssl_ctx);
  ~H2Server();
  absl::StatusOr<int> Start(const std::string& host, int port, int threads);
  void Stop();

  struct Worker;

 private:
  State* state_;
  SSL_CTX* ssl_ctx_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace pushgate::pusher::emulator::internal
