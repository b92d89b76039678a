// The SIP side of the gateway on sofia-sip nta: a stateful proxy that relays REGISTERs to the
// backend registrar with masqueraded contacts and binds the phones' own contacts when the backend
// accepts them (register on response). Every decision is made by proxy/core; this class converts
// sofia messages to core values and carries the decisions out.
//
// Processing order for a request (OnRequest; decided by Classify in proxy/core/request_route.h):
//   0. Top Route is the call handler's Record-Route -> CallHandler::HandleInDialog, when
//      DecideInDialog (proxy/core/route_set.h) lets it through (not an open relay).
//      ACK (of a relayed 2xx) -> forwarded statelessly to the backend (a phone's only).
//   1. Max-Forwards 0 -> 483; draining -> 503.
//   2. REGISTER -> RegisterRelay (register_relay.h): domain allowed? (403) -> contacts parse
//      (400) -> CheckRegister (400/403/423) -> masquerade, kept with its transaction -> forward
//      to the backend; the backend's final response -> bind (2xx) -> answer the phone with its
//      own contacts.
//   3. Request URI with a masquerade value: forged/altered -> 403; valid ->
//      CallHandler::HandleIncoming(CallTargetOf: that one phone, or the AOR for an
//      insert-domain value) when a call handler is installed, else 480.
//   4. From a trusted backend without a masquerade value -> 404.
//   5. Anything else (a phone's request, outbound-proxy use): relayed statefully (provisional
//      responses of INVITE, CANCEL, final response) to the configured backend only; with
//      no backend configured, to the request URI's domain only if it is an explicitly allowed
//      domain (never with "*"); otherwise 403. Never to an arbitrary host. With a call handler,
//      a relayed INVITE carries its Record-Route (naming the phone's TCP/TLS flow), so the
//      dialog's later requests come back through the gateway (step 0).
//
// Every answer the proxy makes itself is an Outcome (proxy/core/outcomes.h). The pieces:
// Listeners (binding, advertised addresses, and those as the RouteSet that tells our own Route
// entry on a phone's request), Transactions (one table of proxied transactions),
// RegisterRelay (the REGISTER path), StatefulRelay (other requests to the backend), WireGuard
// (head line and connection limits, message deadline: on the sockets, before sofia parses).
//
// Threads: everything runs on the SofiaLoop given to Create(); the public methods hop onto it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proxy/core/call_target.h"
#include "proxy/core/outcomes.h"
#include "proxy/core/rate_limit.h"
#include "proxy/core/registrar.h"
#include "proxy/core/transport.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/sofia_util.h"
#include "proxy/store/binding_store.h"

namespace pushgate::proxy::sofia {

struct SipProxyOptions {
  // Where to listen: transport, IP literal (IPv4 or IPv6, "0.0.0.0"/"::" for all), port (0 picks
  // a free port).
  std::vector<TransportInfo> listen = {{Transport::kUdp, "0.0.0.0", 5060}};
  // The address to advertise per transport (in masqueraded contacts): the first entry whose
  // transport matches wins. Without one, the address sofia puts in its Via for that transport.
  std::vector<TransportInfo> advertise;
  // Directory with agent.pem (key + certificate) and cafile.pem, for TLS listeners.
  std::string tls_certificate_dir;
  // "sip:backend.example.org:5060;transport=tcp"; empty -> RFC 3263 on the request URI.
  std::string backend_uri;
  // IP addresses whose requests count as coming from the backend.
  std::vector<std::string> trusted_backends;
  // Registration domains served ("*", "example.org", "*.example.org").
  std::vector<std::string> domains = {"*"};
  bool insert_domain = false;
  std::string masquerade_secret;  // required, non-empty
  RegistrarPolicy registrar;
  absl::Duration t1 = absl::Milliseconds(500);
  // Non-INVITE client transaction timeout (timer F = 64*T1 by default).
  absl::Duration transaction_timeout = absl::Seconds(32);
  // REGISTERs waiting for the backend at most; beyond, the oldest is answered 503.
  size_t max_pending_registers = 100000;
  int store_retry_after_seconds = 5;  // Retry-After of the 503 sent when the store fails
  // The store's own Retry-After estimate (RedisBindingStore::RetryAfterHint), called on the loop
  // thread; the 503 carries the larger of the two. Null: none.
  std::function<absl::Duration()> store_retry_hint;
  // Retry-After of the 503s sent when the gateway is overloaded or stopping, and when an AOR
  // kept changing under a registration (see proxy/core/outcomes.h).
  absl::Duration busy_retry_after = absl::Seconds(5);
  absl::Duration conflict_retry_after = absl::Seconds(1);
  // Timer C (RFC 3261 16.6 step 11): a relayed INVITE without a final answer this long is
  // cancelled toward the next hop and answered 408.
  absl::Duration timer_c = absl::Seconds(180);
  // Largest SIP message accepted (NTATAG_MAXSIZE: sofia refuses a larger one while receiving
  // it). Keep it at 64 KiB or more: sofia aborts (tport_recv_dgram assertion) on a UDP datagram
  // above it.
  size_t max_message_size = size_t{64} * 1024;
  // A TCP/TLS connection without a registered flow or transaction is closed after this long
  // idle; 0: never.
  absl::Duration connection_idle_timeout = absl::Seconds(120);
  // A message must arrive completely this long after its first byte (the first one: after the
  // connection opened), else its connection is closed (slowloris); 0: no deadline.
  absl::Duration message_timeout = absl::Seconds(20);
  // Checked on the sockets before sofia parses (wire_guard.h); 0: no limit. Lines of a message
  // head (start line and header lines): a UDP datagram over it is dropped, a TCP connection
  // closed (TLS: counted once decrypted).
  size_t max_header_lines = 256;
  // TCP/TLS connections open at most, in total and from one source address (trusted backends
  // exempt); one more is closed as soon as it is accepted.
  size_t max_connections = 2048;
  size_t max_connections_per_source = 64;
  // Per-source request rate limit (Kamailio's pike defaults); trusted backends are exempt.
  RateLimitPolicy rate_limit;
  // A source over its budget: silence instead of 503 + Retry-After.
  bool rate_limit_silent = false;
};

// The Retry-After values of the outcome table (proxy/core/outcomes.h) from the options.
RetryAfterConfig RetryAfterOf(const SipProxyOptions& options);

// The call half plugs in here (e.g. an adapter around CallRouter): the proxy hands it the
// requests that are its business. Every method runs on the loop thread and takes over `irq`
// (answers and destroys it).
class CallHandler {
 public:
  virtual ~CallHandler() = default;
  // A request (not REGISTER, not ACK) whose request URI carries a valid masquerade value, for
  // `target` (proxy/core/call_target.h: one phone of an AOR, or the whole AOR). Max-Forwards 0
  // was already answered (483).
  virtual void HandleIncoming(nta_incoming_t* irq, const sip_t* sip, const CallTarget& target) = 0;
  // True when the request's top Route is the handler's own Record-Route (in-dialog request).
  virtual bool IsOurRoute(const sip_t* sip) const = 0;
  // How many of the top Route entries are ours (an RFC 5658 pair counts 2).
  virtual int OwnRoutes(const sip_t* sip) const { return IsOurRoute(sip) ? 1 : 0; }
  // True when one of our Route entries names a phone (its live flow, or its signed address):
  // HandleInDialog sends the request there (or it came from there, from the phone).
  virtual bool NamesPhone(const sip_t* sip) const { return false; }
  // Called only for requests the proxy lets through: from a trusted backend, over or toward a
  // phone's live flow, or toward the backend (never to an arbitrary host: not an open relay).
  virtual void HandleInDialog(nta_incoming_t* irq, const sip_t* sip) = 0;
  // The handler's Record-Route URIs (top first, no ;lr) for an INVITE received over `in` and
  // sent over `out`, naming the phone by `flow_token` when not empty, else by its address
  // `phone` when given (two entries when the transports differ, RFC 5658): the proxy puts them
  // on the INVITEs it relays for phones (outbound-proxy use) so their dialogs come back here and
  // reach them. Empty: no Record-Route.
  virtual std::vector<std::string> RecordRoutesFor(
      std::optional<Transport> in, std::optional<Transport> out, const std::string& flow_token,
      const std::optional<TransportInfo>& phone) const {
    return {};
  }
};

// The live TCP/TLS connection behind a binding's flow token (null: closed or unknown).
using FlowLookup = std::function<tport_t*(const std::string& flow_token)>;

class SipProxy {
 public:
  // Creates the nta agent and the listeners on `loop`. `store` must outlive the proxy and is only
  // used on the loop thread.
  static absl::StatusOr<std::unique_ptr<SipProxy>> Create(SofiaLoop& loop, SipProxyOptions options,
                                                          BindingStore& store, const Clock& clock);
  // Destroys every transaction and the agent on the loop thread.
  ~SipProxy();
  SipProxy(const SipProxy&) = delete;
  SipProxy& operator=(const SipProxy&) = delete;

  // The bound listeners (real ports when 0 was asked). Thread-safe.
  std::vector<TransportInfo> Listening() const;
  // The address advertised for a transport. Thread-safe.
  absl::StatusOr<TransportInfo> Advertised(Transport transport) const;

  // Graceful stop: new requests get 503, then waits up to `timeout` for the transactions in
  // progress to finish. Returns how many were still open at the deadline. Thread-safe; call it
  // from another thread than the loop's.
  size_t Drain(absl::Duration timeout);

  // Transactions in progress (for tests and /readyz). Thread-safe.
  size_t InFlight() const;

  // Installs the call half: `make` runs on the loop thread with the agent and the flow lookup;
  // the handler it returns is owned by the proxy and destroyed (on the loop) before the agent.
  // Without one, a valid masqueraded request gets 480. Thread-safe.
  void SetCallHandler(
      std::function<std::unique_ptr<CallHandler>(nta_agent_t* agent, FlowLookup flows)> make);

  class Impl;

 private:
  explicit SipProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pushgate::proxy::sofia
