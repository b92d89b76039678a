#include "proxy/sofia/message_facts.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace pushgate::proxy::sofia {
namespace {

HeaderCount& Entry(MessageFacts& facts, absl::string_view name) {
  for (HeaderCount& h : facts.headers) {
    if (h.name == name) return h;
  }
  facts.headers.push_back({std::string(name), 0, false, false});
  return facts.headers.back();
}

void AddNumber(MessageFacts& facts, absl::string_view name, absl::string_view value) {
  facts.numbers.push_back({std::string(name), std::string(value)});
}

}  // namespace

MessageFacts MessageFactsOf(msg_t* msg, bool datagram) {
  MessageFacts facts;
  facts.datagram = datagram;
  const sip_t* sip = sip_object(msg);
  if (sip == nullptr) return facts;
  facts.request = sip->sip_request != nullptr;
  msg_header_t** head = msg_chain_head(msg);
  for (msg_header_t* h = head != nullptr ? *head : nullptr; h != nullptr; h = h->sh_succ) {
    const msg_hclass_t* hc = h->sh_class;
    if (hc == nullptr) continue;
    if (hc == sip_error_class) {
      const char* name = reinterpret_cast<const sip_error_t*>(h)->er_name;
      if (name != nullptr) {
        HeaderCount& e = Entry(facts, name);
        ++e.count;
        e.malformed = true;
      }
      continue;
    }
    // The request/status line, the separator and the payload have no name.
    if (hc->hc_name == nullptr || hc->hc_name[0] == '\0') continue;
    HeaderCount& entry = Entry(facts, hc->hc_name);
    ++entry.count;
    entry.single = hc->hc_kind == msg_kind_single;
    // Numbers from the parsed values (sofia keeps them in unsigned long, so 4294967296 is
    // still itself here; the raw header text may no longer be in the message's buffer).
    // Values sofia could not parse at all ("-1", "x") are error headers, counted above.
    absl::string_view name(hc->hc_name);
    if (hc == sip_max_forwards_class) {
      AddNumber(facts, name,
                absl::StrCat(reinterpret_cast<const sip_max_forwards_t*>(h)->mf_count));
    } else if (hc == sip_expires_class) {
      // RFC 3261 20.19 allows delta-seconds only; sofia also parses an HTTP date (ex_date),
      // which we refuse as not a number.
      const auto* e = reinterpret_cast<const sip_expires_t*>(h);
      AddNumber(facts, name, e->ex_date != 0 ? "date" : absl::StrCat(e->ex_delta));
    } else if (hc == sip_contact_class) {
      const auto* m = reinterpret_cast<const sip_contact_t*>(h);
      if (const char* v = msg_params_find(m->m_params, "expires=")) {
        AddNumber(facts, "Contact expires", v);
      }
    }
  }
  // A Contact line with several values becomes several headers in the chain, all parsed from
  // one line; the chain walk above already saw them.
  if (sip->sip_content_length != nullptr) facts.content_length = sip->sip_content_length->l_length;
  facts.body_size = sip->sip_payload != nullptr ? sip->sip_payload->pl_len : 0;
  return facts;
}

CheckResult CheckSofiaMessage(msg_t* msg, bool datagram) {
  return CheckMessage(MessageFactsOf(msg, datagram));
}

}  // namespace pushgate::proxy::sofia
