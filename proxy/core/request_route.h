// What happens to a request the proxy receives: one pure function, Classify, holds the
// processing order of the SIP side (resiprocate's request processor chain, in one place).
//
//   0. Our Record-Route on top (a call's in-dialog request): relayed by the call handler when
//      the in-dialog verdict allows it (from the backend, toward/from a phone, toward the
//      backend); otherwise 403 (an ACK is dropped silently). ACK otherwise: a phone's is
//      forwarded statelessly to the configured backend, any other absorbed.
//   1. Max-Forwards 0 -> 483; draining -> 503.
//   2. REGISTER -> the register relay (its own checks: register_plan, registrar).
//   3. CANCEL that matched no transaction -> 481. Unparsable request URI -> 400.
//   4. Request URI with a masquerade value: forged/altered -> 403; valid -> the call handler
//      (to the one phone the value names, or to the AOR for an insert-domain value:
//      call_target.h), 480 without one.
//   5. From a trusted backend without a masquerade value -> 404.
//   6. Anything else: relayed statefully to the configured backend; without one, to the request
//      URI's domain only when it is explicitly allowed (never with "*"); otherwise 403. A relayed
//      INVITE carries our Record-Route when a call handler is installed.
//
// The sofia layer extracts RequestFacts (plain values) and carries the RequestRoute out. Request
// validation (header sanity, sizes) belongs here too, as further facts and earlier steps.
// Pure: no sofia, no clock. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "proxy/core/outcomes.h"
#include "proxy/core/sip_uri.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy {

enum class Method : uint8_t { kRegister, kInvite, kAck, kCancel, kOther };

// The method of a request line ("INVITE" -> kInvite; unknown methods kOther).
Method MethodOf(absl::string_view name);

// What the sofia layer knows about a request. A fact that an earlier step makes irrelevant may
// be left at its default (the adapter skips costly ones: the in-dialog verdict without our
// Route on top, the request URI checks for REGISTER and ACK).
struct RequestFacts {
  bool parsed = true;  // a request line was parsed
  Method method = Method::kOther;
  std::optional<uint32_t> max_forwards;  // nullopt: no Max-Forwards header
  bool draining = false;
  bool has_call_handler = false;
  bool our_route = false;          // the top Route is the call handler's Record-Route
  bool in_dialog_allowed = false;  // the in-dialog verdict (only read with our_route)
  bool from_trusted_backend = false;
  bool has_backend = false;  // a backend URI is configured
  bool request_uri_valid = true;
  bool masquerade_marker = false;  // the request URI carries a masquerade parameter
  bool masquerade_valid = false;   // ... and it authenticates
  // Without a backend: the request URI's domain is explicitly allowed (not only by "*").
  bool relay_domain_allowed = false;
};

enum class Route : uint8_t {
  kInDialog,           // CallHandler::HandleInDialog
  kForwardAck,         // stateless to the backend
  kAbsorbAck,          // nothing to do (no backend, or the backend's own ACK)
  kReject,             // answer with `outcome`
  kDrop,               // no answer (an ACK), count `outcome`
  kRegister,           // the register relay
  kToAor,              // CallHandler::HandleIncoming with the restored CallTarget
  kRelayToBackend,     // stateful relay to the configured backend
  kRelayToRequestUri,  // stateful relay to the request URI's domain (RFC 3263)
};

struct RequestRoute {
  Route route = Route::kReject;
  Outcome outcome = Outcome::kInternalError;  // kReject and kDrop only
  bool record_route = false;                  // relays: put our Record-Route on (INVITE)

  bool operator==(const RequestRoute&) const = default;
};

RequestRoute Classify(const RequestFacts& facts);

// The transport of the next hop of a relayed request: the configured backend's, else the
// request URI's (UDP when neither names a usable one).
Transport NextHopTransport(const std::optional<Uri>& backend, const Uri& request_uri);

// For logs and test messages: "reject(403 relay_denied)", "relay_to_backend+rr".
std::string DebugString(const RequestRoute& route);

}  // namespace pushgate::proxy
