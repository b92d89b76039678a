// The call half's forwarding rules as pure functions: what the sofia adapters (CallRouter for
// forks, DialogRelay for in-dialog requests) do with Max-Forwards, where a request goes next, and
// which responses travel back to the caller. Decisions only: the adapters carry them out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "proxy/core/binding.h"
#include "proxy/core/outcomes.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy {

// Max-Forwards of a request we forward (RFC 3261 16.6 step 3): the received value (70 when
// absent), capped at 70, minus one; never below 0.
uint32_t ForwardedMaxForwards(std::optional<uint32_t> received);

// A request we must answer 483 instead of forwarding: Max-Forwards 0. An ACK has no answer (it
// is forwarded with 0 and dropped further on).
bool TooManyHops(std::optional<uint32_t> max_forwards, bool is_ack);

// A binding can get a request now: over its kept connection when it has a flow token (the
// connection must still be open), else always (UDP, or a connection nta can open).
bool BranchReachable(const Binding& binding, bool flow_live);

// Where a fork branch goes.
struct BranchHop {
  bool via_flow = false;  // over the phone's kept connection
  // The next hop's URI: the address the phone registered from (behind NAT its contact may be a
  // private address), or "" for the request URI (the contact).
  std::string next_hop;
  std::optional<Transport> transport;  // the transport it leaves on, when known
  // The phone's address to sign into our Record-Route (no kept connection).
  std::optional<TransportInfo> phone;
};
// `flow_transport`: the transport of the binding's live flow, or nullopt when it has none (or it
// is closed); `flow_live`: whether that flow is open.
BranchHop BranchHopFor(const Binding& binding, bool flow_live,
                       std::optional<Transport> flow_transport);

// The next hop of an in-dialog request after our Route entries: over the phone's flow (when our
// Route names a live one and the request did not come over it) to `loose_target` (the next
// Route entry, else the request URI); else to the phone's signed address when our Route carries
// one and the request does not come from there (to the caller otherwise); else to `loose_target`.
std::string InDialogNextHop(const std::string& loose_target, bool via_flow,
                            const std::optional<TransportInfo>& phone,
                            const std::optional<TransportInfo>& source);

// What to do with a response to a request we relayed (in-dialog) or forked.
struct ResponseRelay {
  enum class Action : uint8_t {
    kIgnore,  // 100 Trying (hop by hop) or nothing
    kRelay,   // send the response on upstream, our Via removed
    kAnswer,  // nta's own answer (timeout, unreachable): answer upstream with `outcome`
  };
  Action action = Action::kIgnore;
  int status = 0;                             // the response's status; for kAnswer, the outcome's
  Outcome outcome = Outcome::kInternalError;  // kAnswer only
  bool done = false;                          // a final response: the relay is over
};
// For an in-dialog relay: `internal` when nta made the response up (no peer answered): 408
// kBackendTimeout, else kNextHopNoAnswer.
ResponseRelay RelayResponse(int status, bool internal);
// For a fork: the fork's decision to forward `status` of a branch; `have_response` when the
// phone's own response is at hand; `final_sent` when the caller already has a final response.
// One non-2xx final only, every 2xx goes on (RFC 3261 16.7 step 5); our own answer for nta's
// 408 is kCallTimeout, for anything else kBranchNoAnswer (a 500: never relay a 503, RFC 3261
// 16.7 step 6).
ResponseRelay ForkResponse(int status, bool have_response, bool final_sent);

}  // namespace pushgate::proxy
