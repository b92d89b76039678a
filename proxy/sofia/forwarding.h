// Sofia glue shared by every relay of the proxy (SipProxy's relays of phones' requests,
// RegisterRelay, CallRouter's forks, DialogRelay's in-dialog requests): our Route entries of a
// request as core values, the copies of requests we forward and of responses we relay, and the
// answers we make ourselves (always an Outcome of proxy/core/outcomes.h). The rules themselves
// (Max-Forwards, which entries are ours) are in proxy/core (relay_rules, route_set).
// Loop thread only.
#pragma once

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "proxy/core/outcomes.h"
#include "proxy/core/route_set.h"
#include "proxy/core/sip_uri.h"
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
// True when `url` names one of our URIs (RouteSet::IsOwnAddress on the URL's parts; a URL
// without a port names the scheme's default, 5060 or 5061).
bool IsOwnUrl(const RouteSet& routes, const url_t* url);

// A copy of `original` ready to forward: Max-Forwards decremented (DecrementMaxForwards), the
// top `strip_routes` Route entries (ours) removed. Null when the copy fails.
MsgPtr CopyForForward(msg_t* original, int strip_routes);
// The request of `irq` copied to forward (CopyForForward), our own Route entry on top removed
// when there is one (a phone using us as its outbound proxy). Null when it cannot be copied.
MsgPtr ForwardCopy(nta_incoming_t* irq, const RouteSet& ours);

// Puts Record-Route entries `<uri;lr>` (top first) on the request `msg`.
void AddRecordRoutes(msg_t* msg, const std::vector<std::string>& uris);

// The loose-routing target of a request: its top Route entry, else its request URI.
std::string LooseTarget(const sip_t* sip);

// Copy of a response to relay upstream: our Via removed (RemoveTopVia). Null when the copy
// fails; for `orq`, also when it has no response.
MsgPtr ResponseToRelay(msg_t* response);
MsgPtr ResponseToRelay(nta_outgoing_t* orq);

// Answers the server transaction with `outcome` (AnswerFor: the table's code, reason and
// Retry-After) and destroys it. Nothing when `irq` is null.
void ReplyAndClose(IncomingPtr irq, Outcome outcome, const RetryAfterConfig& retry);

}  // namespace pushgate::proxy::sofia
