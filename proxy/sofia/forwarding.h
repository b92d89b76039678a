// Sofia glue shared by the call half (CallRouter for forks, DialogRelay for in-dialog requests):
// our Route entries of a request as core values, the copies of requests we forward and of
// responses we relay, answering a server transaction, and sofia values as core ones. The rules
// themselves (Max-Forwards, which entries are ours) are in proxy/core (relay_rules, route_set).
// Loop thread only.
#pragma once

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "proxy/core/route_set.h"
#include "proxy/core/sip_uri.h"
#include "proxy/push/push_request.h"
#include "proxy/sofia/sofia_util.h"

namespace pushgate::proxy::sofia {

// The top Route entries of a request that are ours.
struct OwnRouteEntries {
  int count = 0;                       // 0, 1, or 2 for an RFC 5658 pair (RouteSet::OwnRoutes)
  absl::InlinedVector<Uri, 2> parsed;  // those of them that parse (for NamedFlow & co)
};
// Looks at the top entries without parsing them first: most requests carry no Route of ours.
// `parse` false: only `count` is needed (entries are parsed only to tell a pair from a spiral).
OwnRouteEntries OwnRoutesOf(const RouteSet& routes, const sip_t* sip, bool parse = true);
// True when `url` names one of our URIs (RouteSet::IsOwnAddress on the URL's parts).
bool IsOwnUrl(const RouteSet& routes, const url_t* url);

// Max-Forwards of a request, nullopt when absent.
std::optional<uint32_t> MaxForwardsOf(const sip_t* sip);

// A copy of `original` ready to forward: Max-Forwards decremented (ForwardedMaxForwards), the
// top `strip_routes` Route entries (ours) removed. Null when the copy fails.
MsgPtr CopyForForward(msg_t* original, int strip_routes);

// The loose-routing target of a request: its top Route entry, else its request URI.
std::string LooseTarget(const sip_t* sip);

// Copy of a response to relay upstream: our Via removed. Null when the copy fails.
MsgPtr ResponseToRelay(msg_t* response);

// Answers the server transaction with `status` `reason` and destroys it.
void ReplyAndClose(IncomingPtr irq, int status, const char* reason);

// The call's facts for a push (Call-ID, From URI, unquoted display name).
CallInfo CallInfoOf(const sip_t* sip);

// The agent's listeners (transport and bound address).
std::vector<TransportInfo> ListenersOf(nta_agent_t* agent);

// For nta's url_string_t parameters: null (the request URI) for an empty string.
const url_string_t* TargetUrl(const std::string& s);

}  // namespace pushgate::proxy::sofia
