// A local APNs / FCM v1 / Google OAuth2 emulator for tests, benchmarks and the demo.
//
// One HTTP/2 TLS listener speaks, strictly like the real services:
//   POST /3/device/<token>                       APNs provider API (token or certificate auth)
//   POST /v1/projects/<project>/messages:send    FCM HTTP v1 (bearer access token)
//   POST /token                                  OAuth2 JWT-bearer grant issuing those tokens
// A plain HTTP/1.1 JSON control endpoint (separate port) reports what was received and sets
// faults: GET /received[?since=N], GET /stats, GET|POST /faults, POST /dead-tokens, POST /reset.
//
//   Emulator emu;
//   EmulatorOptions opts;
//   opts.apns_keys.push_back({"TEAM123456", "KEY1234567", public_pem});
//   ASSIGN_OR_RETURN(BoundPorts ports, emu.Start(opts));
//   ... point the client at https://127.0.0.1:<ports.h2>, trusting emu.ca_pem() ...
//   emu.MarkDead(Provider::kApns, token);
//   auto got = emu.Received();
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "nlohmann/json.hpp"

namespace pushgate::pusher::emulator {

enum class Provider { kApns, kFcm, kOAuth, kUnknown };
const char* ProviderName(Provider p);

// A team's APNs signing key (the public half of a .p8).
struct ApnsKey {
  std::string team_id;
  std::string key_id;
  std::string public_key_pem;
};

// A Google service account allowed to obtain FCM access tokens for one project.
struct FcmServiceAccount {
  std::string client_email;
  std::string public_key_pem;
  std::string project_id;
};

// Injected failures. Every field is independent; zero / false means off.
struct Faults {
  int delay_ms = 0;  // wait this long before answering every request
  // The next `fail_next` requests of `fail_target` answer `fail_status` (429, 500 or 503) with
  // the provider's error body, and `Retry-After: retry_after_s` when retry_after_s > 0.
  int fail_next = 0;
  int fail_status = 503;
  int retry_after_s = 0;
  std::string fail_target = "send";  // send (APNs + FCM), apns, fcm, oauth, all
  // After a connection has begun this many streams, GOAWAY (NO_ERROR, APNs-like JSON reason)
  // with last-stream-id = that stream: later streams are not processed (the client replays
  // them). `goaway_limit` connections get it (0 = every connection).
  int goaway_after_streams = 0;
  int goaway_limit = 0;
  // After a connection has processed this many streams, answer those and close it without
  // GOAWAY; streams still in flight are neither processed nor answered (lost, as on a broken
  // connection). `drop_limit` connections get it (0 = every connection).
  int drop_after_streams = 0;
  int drop_limit = 0;
  // SETTINGS_MAX_CONCURRENT_STREAMS announced to new connections (0 = default 1000).
  int max_concurrent_streams = 0;
  // Refuse the TLS handshake's ALPN (fatal alert), as a server without h2 would.
  bool reject_alpn = false;
};

nlohmann::json FaultsToJson(const Faults& f);
// Overrides the fields present in `j`; unknown fields or bad values are INVALID_ARGUMENT.
absl::Status ApplyFaultsJson(const nlohmann::json& j, Faults* f);

struct EmulatorOptions {
  std::string h2_host = "127.0.0.1";
  int h2_port = 0;  // 0 picks a free port
  std::string control_host = "127.0.0.1";
  int control_port = 0;  // 0 picks a free port, -1 disables the control endpoint
  // Server certificate chain and key (PEM). Empty: a self-signed certificate for
  // 127.0.0.1/::1/localhost is generated at start (see Emulator::ca_pem()).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // CA that signs APNs client certificates (certificate auth). Empty: no client certificates
  // are requested.
  std::string client_ca_pem;
  // Certificate subject (UID, else CN) -> allowed topics. A certificate not listed here may
  // push to its UID / CN bundle id and that id's .voip and .complication topics.
  std::map<std::string, std::vector<std::string>> cert_topics;
  std::vector<ApnsKey> apns_keys;
  // Team id -> bundle ids its keys may push to (each with its .voip/.complication variants).
  // A team not listed may push to any topic.
  std::map<std::string, std::vector<std::string>> apns_topics;
  std::vector<FcmServiceAccount> fcm_accounts;
  // Accepted OAuth assertion audiences besides https://<:authority>/token.
  std::vector<std::string> oauth_audiences = {"https://oauth2.googleapis.com/token"};
  int64_t token_expires_in_s = 3600;  // lifetime of issued FCM access tokens
  // Answer 429 TooManyProviderTokenUpdates to a new APNs provider token issued less than 20
  // minutes after the previous new one of the same team and key (Apple's rule).
  bool strict_token_updates = false;
  int threads = 1;               // HTTP/2 event loop threads (SO_REUSEPORT listeners)
  size_t max_records = 200000;   // oldest received requests are forgotten beyond this
  Faults faults;                 // initial faults
  const Clock* clock = nullptr;  // nullptr: the real clock
};

struct BoundPorts {
  int h2 = 0;
  int control = -1;
};

// One request the emulator received and the answer it gave.
struct ReceivedRequest {
  uint64_t seq = 0;  // 1, 2, ... in arrival order; survives forgetting old records
  Provider provider = Provider::kUnknown;
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // without authorization
  std::string body;                                          // OAuth assertion redacted
  std::string token;  // device token (APNs path, FCM message.token)
  std::string topic;  // apns-topic, or the FCM project
  absl::Time time;
  uint64_t connection_id = 0;
  int32_t stream_id = 0;
  int status = 0;
  std::string reason;   // APNs reason / FCM errorCode or status / OAuth error; empty on 200
  std::string apns_id;  // APNs: the apns-id answered; FCM: the message name
  bool fault = false;   // the answer came from an injected fault
};

nlohmann::json ReceivedToJson(const ReceivedRequest& r);

class Emulator {
 public:
  Emulator();
  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  // Binds both listeners and starts serving on background threads.
  absl::StatusOr<BoundPorts> Start(EmulatorOptions options);
  void Stop();

  // PEM of the server certificate clients must trust (the generated one, or tls_cert_pem).
  std::string ca_pem() const;
  BoundPorts ports() const;

  std::vector<ReceivedRequest> Received(uint64_t since = 0) const;
  // Waits until at least `n` requests have been answered (Received().size() >= n counting all
  // since the last Reset). False on timeout.
  bool WaitForReceived(size_t n, absl::Duration timeout) const;
  nlohmann::json Stats() const;

  void SetFaults(const Faults& faults);
  Faults GetFaults() const;
  // Tokens answered 410 Unregistered (APNs, with `since` as timestamp; InfinitePast: the
  // emulator's clock now) / 404 UNREGISTERED (FCM).
  void MarkDead(Provider provider, const std::string& token,
                absl::Time since = absl::InfinitePast());
  // Clears records, stats, faults (back to the start options' faults) and dead tokens.
  void Reset();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pushgate::pusher::emulator
