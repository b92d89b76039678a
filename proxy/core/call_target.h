// Who a call from the backend is for (pure): the bindings a request whose request URI carries a
// valid masquerade value goes to.
//
// The backend holds one masqueraded contact per phone and forks a call to each of them, so a
// request to a masqueraded contact is for that ONE phone: it goes to the phone's current binding
// (found by the device tag the value carries: the phone's +sip.instance or push key, so a phone
// that registered again from another address is still found), and only that phone is pushed and
// called late when it registers again (Fork's kDevice scope). A value that names the AOR
// (insert-domain mode: the request URI is the AOR itself) forks to every binding of the AOR.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "proxy/core/binding.h"
#include "proxy/core/fork.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy {

struct CallTarget {
  std::string aor;         // AorKey: the bindings are looked up under it
  bool whole_aor = true;   // every binding of the AOR; otherwise the one phone below
  std::string device_tag;  // DeviceTag of the phone ("" in values made without one)
  // Without a device tag: the phone's contact as masqueraded (user, transport, host, port).
  std::string user;
  TransportInfo address;

  // A call to every binding of `aor` (the AOR itself was called).
  static CallTarget Aor(std::string aor);
  bool operator==(const CallTarget&) const = default;
};

// The target named by a restored masquerade value: the AOR it carries (else AorKey of the
// restored URI); insert-domain values name the whole AOR, the others one phone.
CallTarget CallTargetOf(const MasqueradeTarget& target);

// The bindings the call goes to. Whole AOR: all of them. One phone: the most recently updated
// binding of its device (same DeviceTag), or, for a value without a tag, the one whose contact
// has the masqueraded user and address; none when that phone is no longer registered.
std::vector<Binding> SelectBindings(const CallTarget& target, std::vector<Binding> bindings);

// How the fork treats registrations of the AOR during the call.
ForkScope ScopeOf(const CallTarget& target);

// The key of a call to one phone: the backend may hold two masqueraded contacts of the same
// phone (the one from before it registered again from another address, until it expires) and
// fork one call to both. Both requests then have the same key (Call-ID, From tag, CSeq number,
// device): the gateway answers the second one 482 (a merged request, RFC 3261 8.2.2.2) instead
// of ringing the phone twice. "" for a call to the whole AOR or when no binding was selected.
std::string MergeKey(const CallTarget& target, const std::vector<Binding>& selected,
                     absl::string_view call_id, absl::string_view from_tag, uint32_t cseq);

// For logs: "aor sip:alice@example.org" or "device 0a1b2c3d.. of sip:alice@example.org".
std::string DebugString(const CallTarget& target);

}  // namespace pushgate::proxy
