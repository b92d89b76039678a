// The REGISTER decisions of the register relay (pure): from the request as plain values to the
// REGISTER the backend sees, and from the backend's 2xx to the bindings and the phone's answer.
//
//   PlanRegister      request URI, To, domain, Contact values, CheckRegister -> the request or
//                     a rejection (an Outcome)
//   MaskContacts      the masqueraded Contact values for the backend (never push or flow
//                     parameters), the masquerade value of each, the push provider
//   GrantedExpiries   the expiry the backend granted each masqueraded contact
//   AnswerContacts    the 2xx's contacts: the phone's own, with the granted expiry
//   FetchContacts     the answer to a query: every binding, without push parameters
//
// Pure: no sofia, no clock (`now` is passed in). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proxy/core/binding.h"
#include "proxy/core/contact.h"
#include "proxy/core/domain_policy.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/registrar.h"
#include "proxy/core/sip_uri.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy {

// A REGISTER as the sofia layer sees it: header texts, not yet parsed.
struct RegisterFacts {
  std::string request_uri;
  std::optional<std::string> to;      // the To URI; nullopt without a To header
  std::vector<std::string> contacts;  // Contact header values, one per contact or list
  bool contact_unparsable = false;    // sofia could not parse a Contact header
  std::optional<uint32_t> expires;    // Expires header
  std::string call_id;
  uint32_t cseq = 0;
  std::optional<TransportInfo> source;
};

struct RegisterPlan {
  std::optional<SipError> rejection;  // set -> answer with it, nothing else is valid
  Uri request_uri;
  Uri to;
  RegisterRequest request;  // aor, contacts, expires, call id, cseq, source (no flow token yet)
  RegisterCheck check;
};

// Validates in this order: request URI (400 with the parser's message), To present and parsable
// (400), To domain served (403), Contact values parse (400), no unparsable Contact header
// (400), CheckRegister (400/403/423).
RegisterPlan PlanRegister(RegisterFacts facts, const DomainPolicy& domains,
                          const RegistrarPolicy& policy);

// The phone's address as its contact URI names it: transport from the URI (UDP when unknown),
// port 5061 for TLS and 5060 otherwise when absent.
TransportInfo ContactAddress(const Uri& contact);

struct MaskedContacts {
  std::vector<std::string> values;             // Contact header values for the backend
  std::vector<std::string> masquerade_values;  // the masquerade parameter of each, in order
  std::string pns_provider;  // the first push provider among the contacts ("" for none)
};

// The backend's view of the contacts of `request` (not for a fetch or "*"): each masqueraded
// toward `advertised` (the gateway's address on the transport toward the backend), with the
// header parameters the backend may use (instance, q, ...; never expires, reg-id or push
// parameters) and expires = the asked expiry.
MaskedContacts MaskContacts(const MasqueradeCodec& codec, const RegisterRequest& request,
                            const RegisterCheck& check, const TransportInfo& advertised,
                            const std::optional<std::string>& insert_domain);

// The expiry the backend granted each masqueraded contact (empty for a fetch or "*"). When the
// backend lists contacts: the listed expires of the contact with our masquerade value (else the
// Expires header, else what we asked), zero when not listed. When it lists none: what we asked,
// shortened to the Expires header when there is one (removals stay removals).
std::vector<absl::Duration> GrantedExpiries(const RegisterCheck& check,
                                            const std::vector<std::string>& masquerade_values,
                                            const ContactList& backend_contacts,
                                            std::optional<uint32_t> expires_header);

// The contacts of the 2xx to the phone: its own contacts with the expiry granted to each;
// removed ones (granted zero) are not listed; none for "*".
std::vector<std::string> AnswerContacts(const RegisterRequest& request,
                                        const std::vector<absl::Duration>& granted);

// The contacts of the answer to a query (no Contact): every live binding with its remaining
// expiry. Another device's push parameters never leave the gateway.
std::vector<std::string> FetchContacts(const std::vector<Binding>& bindings, absl::Time now);

// The Feature-Caps header value of the 2xx for a push-capable phone: *;+sip.pns="apns".
std::string FeatureCaps(absl::string_view pns_provider);

// How long a phone's TCP/TLS flow is kept after its REGISTER: the longest expiry asked (at
// least the transaction timeout) plus 30 s.
absl::Duration FlowKeepTime(const RegisterCheck& check, absl::Duration transaction_timeout);

// True for the names of the Contact header ("Contact", "m" in any case) as sofia reports
// headers it could not parse.
bool NamesContactHeader(absl::string_view header_name);

// The registrations metric label of a backend refusal: "backend_4xx".
std::string BackendRefusalLabel(int status);

}  // namespace pushgate::proxy
