// The facts message_check.h decides on, read from a parsed sofia message: header counts by
// class (walking the message's header chain, where sofia keeps every instance, including the
// duplicates of single-instance headers that it also files in sip_error under their own
// class; unparsable ones are sip_error entries named by er_name), numeric values (sofia keeps
// Expires 4294967296 in an unsigned long; narrowed to 32 bits it became 0), Content-Length
// against the body. Loop thread (no shared state).
#pragma once

#include <sofia-sip/msg.h>

#include "proxy/core/message_check.h"

namespace pushgate::proxy::sofia {

// `datagram`: the message arrived over UDP.
MessageFacts MessageFactsOf(msg_t* msg, bool datagram);

// MessageFactsOf + CheckMessage.
CheckResult CheckSofiaMessage(msg_t* msg, bool datagram);

}  // namespace pushgate::proxy::sofia
