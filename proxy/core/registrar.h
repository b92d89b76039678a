// Registrar rules (pure): REGISTER validation, expiry clamping, binding replacement, eviction.
//
// Flow in the adapter (register on response):
//   1. ParseContacts(...)               -> 400 with the error message when malformed
//   2. CheckRegister(request, policy)   -> SipError (an Outcome: 400/403/423) or per-contact
//                                          expiries to ask
//   3. masquerade, keep the request with its transaction, forward to the backend
//   4. backend 2xx: ApplyRegistration(existing, request, granted, now, policy) inside an
//      atomic store Update
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "proxy/core/binding.h"
#include "proxy/core/contact.h"
#include "proxy/core/outcomes.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy {

struct RegistrarPolicy {
  absl::Duration min_expires = absl::Seconds(60);
  absl::Duration max_expires = absl::Hours(24);  // push apps register for long periods
  absl::Duration default_expires = absl::Hours(1);
  int max_contacts_per_aor = 10;
  int max_contacts_per_register = 5;
};

// A REGISTER as the registrar sees it (the adapter converts sip_t into this).
struct RegisterRequest {
  std::string aor;  // AorKey(To URI)
  ContactList contacts;
  std::optional<uint32_t> expires_header;  // Expires header, seconds
  std::string call_id;
  uint32_t cseq = 0;
  TransportInfo source;    // where the REGISTER came from
  std::string flow_token;  // adapter's connection id ("" for UDP)
};

// A SIP error response to send instead of processing the request.
struct SipError {
  Outcome outcome = Outcome::kInternalError;
  int status = 500;  // StatusOf(outcome)
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. {"Min-Expires", "60"}
};

struct RegisterCheck {
  std::optional<SipError> error;  // set -> answer with it, do not forward
  // One per contact (same order as request.contacts.contacts): the expiry to request from the
  // backend = contact expires param, else Expires header, else default; clamped to max_expires.
  // Zero means removal. Empty for "Contact: *" and for a fetch (no Contact).
  std::vector<absl::Duration> expiries;
  bool fetch = false;     // no Contact header: a binding query, forward as is
  bool wildcard = false;  // "Contact: *" with "Expires: 0": remove all

  bool ok() const { return !error.has_value(); }
};

// Validates a REGISTER:
//  - 400 "Contact: * must be the only contact" / "Contact: * requires Expires: 0";
//  - 403 "Too many contacts in one REGISTER (max N)";
//  - 423 "Interval Too Brief" with Min-Expires when a non-zero expiry is below min_expires;
//  - 400 for a contact whose push parameters are malformed (the ParsePushParams message);
// Expiries above max_expires are clamped, not refused.
RegisterCheck CheckRegister(const RegisterRequest& request, const RegistrarPolicy& policy);

// The bindings of the AOR after the backend accepted `request`.
//  - existing bindings already expired at `now` are dropped;
//  - wildcard -> all removed;
//  - each contact (in order) replaces every existing binding of the same device: same
//    +sip.instance and reg-id when both have an instance; or same push key when both have one;
//    or, when not both have an instance, an equivalent contact URI;
//  - a contact is ignored when the binding it would replace has the same Call-ID and a higher
//    CSeq (an older REGISTER answered late, RFC 3261 10.3 step 7);
//  - granted[i] (the expiry the backend gave contact i; Zero/negative = removal) sets
//    expires_at = now + granted[i]; binding fields come from the contact and the request
//    (received = request.source, flow_token, call_id, cseq, updated_at = now);
//  - above max_contacts_per_aor, the least recently updated bindings are evicted;
//  - result sorted by q descending, then most recently updated first.
// `granted` must have one entry per contact; missing entries count as removal.
std::vector<Binding> ApplyRegistration(std::vector<Binding> existing,
                                       const RegisterRequest& request,
                                       const std::vector<absl::Duration>& granted, absl::Time now,
                                       const RegistrarPolicy& policy);

// The binding made from one contact of `request` (exposed for tests and the adapter).
Binding MakeBinding(const RegisterRequest& request, const Contact& contact, absl::Duration granted,
                    absl::Time now);

// True if `incoming` is the same device as `existing` (the replacement rule above).
bool SameDevice(const Binding& existing, const Binding& incoming);

}  // namespace pushgate::proxy
