// The SIP message class the proxy parses with: sofia's default one, except that a Via's maddr
// parameter no longer steers where responses go.
//
// nta picks a response's destination from the request's top Via when the request arrives, before
// any callback of ours runs, and maddr comes first (RFC 3261 18.2.2): any sender could aim
// the proxy's answers, and the answers it relays, at a third party (reflection). With this class
// a parsed Via keeps its maddr parameter as text (relayed unchanged) but sofia's maddr field
// stays empty, so responses go to received/rport like every other response.
//
// Deviation: the issue allows maddr from the trusted backend. The destination is fixed before
// the source is known, so pushgate ignores it from everyone; no backend we test with (Kamailio,
// Asterisk) sends it, and a backend always answers over the address its request came from.
#pragma once

#include <sofia-sip/msg_types.h>

namespace pushgate::proxy::sofia {

// One process-wide class (built on first use, never freed): pass it to nta (NTATAG_MCLASS) and
// to msg_create/msg_make wherever a message from the network is parsed.
msg_mclass_t const* ProxyMessageClass();

}  // namespace pushgate::proxy::sofia
