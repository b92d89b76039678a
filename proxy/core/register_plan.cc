#include "proxy/core/register_plan.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/core/push_params.h"

namespace pushgate::proxy {
namespace {

SipError Reject(Outcome outcome, absl::string_view reason = {}) {
  SipError e;
  e.outcome = outcome;
  e.status = StatusOf(outcome);
  e.reason = std::string(reason.empty() ? Describe(outcome).reason : reason);
  return e;
}

// The request URI, the To URI and its domain.
std::optional<SipError> CheckAddresses(const RegisterFacts& facts, const DomainPolicy& domains,
                                       RegisterPlan& plan) {
  auto request_uri = ParseUri(facts.request_uri);
  if (!request_uri.ok()) return Reject(Outcome::kBadRequest, request_uri.status().message());
  plan.request_uri = *std::move(request_uri);
  if (!facts.to) return Reject(Outcome::kBadRequest, "Missing To header");
  auto to = ParseUri(*facts.to);
  if (!to.ok()) return Reject(Outcome::kBadRequest, absl::StrCat("To: ", to.status().message()));
  plan.to = *std::move(to);
  if (!domains.Allowed(plan.to.host)) return Reject(Outcome::kDomainNotServed);
  return std::nullopt;
}

}  // namespace

RegisterPlan PlanRegister(RegisterFacts facts, const DomainPolicy& domains,
                          const RegistrarPolicy& policy) {
  RegisterPlan plan;
  if ((plan.rejection = CheckAddresses(facts, domains, plan))) return plan;
  RegisterRequest& request = plan.request;
  request.aor = AorKey(plan.to);
  for (const std::string& value : facts.contacts) {
    absl::Status st = AppendContacts(value, request.contacts);
    if (!st.ok()) {
      plan.rejection = Reject(Outcome::kBadRequest, st.message());
      return plan;
    }
  }
  if (facts.contact_unparsable) {
    // A Contact among the headers sofia could not parse makes the request unusable.
    plan.rejection = Reject(Outcome::kBadRequest, "Contact: malformed header");
    return plan;
  }
  request.expires_header = facts.expires;
  request.call_id = std::move(facts.call_id);
  request.cseq = facts.cseq;
  if (facts.source) request.source = *std::move(facts.source);
  plan.check = CheckRegister(request, policy);
  if (!plan.check.ok()) plan.rejection = plan.check.error;
  return plan;
}

TransportInfo ContactAddress(const Uri& contact) {
  TransportInfo phone;
  auto t = UriTransport(contact);
  phone.transport = t.ok() ? *t : Transport::kUdp;
  phone.host = contact.host;
  phone.port = contact.port.value_or(phone.transport == Transport::kTls ? 5061 : 5060);
  return phone;
}

MaskedContacts MaskContacts(const MasqueradeCodec& codec, const RegisterRequest& request,
                            const RegisterCheck& check, const TransportInfo& advertised,
                            const std::optional<std::string>& insert_domain) {
  MaskedContacts out;
  const std::vector<Contact>& contacts = request.contacts.contacts;
  for (size_t i = 0; i < contacts.size() && i < check.expiries.size(); ++i) {
    const Contact& original = contacts[i];
    Contact masked;
    // The device rides along (one binding per contact at the backend); in insert-domain mode
    // the value names the AOR: a call to it goes to every phone of the AOR.
    const std::string device =
        insert_domain
            ? std::string()
            : DeviceKey(MakeBinding(request, original, absl::ZeroDuration(), absl::Time()));
    masked.uri = codec.Masquerade(original, advertised, insert_domain, ContactAddress(original.uri),
                                  request.aor, device);
    // Header parameters the backend may use (instance, q); never push or flow parameters.
    for (const auto& [name, value] : original.params) {
      if (absl::EqualsIgnoreCase(name, "expires") || absl::EqualsIgnoreCase(name, "reg-id") ||
          IsPushParamName(name)) {
        continue;
      }
      masked.params.emplace_back(name, value);
    }
    masked.SetParam("expires", absl::StrCat(absl::ToInt64Seconds(check.expiries[i])));
    out.masquerade_values.push_back(Param(masked.uri, kMasqueradeParam).value_or(""));
    out.values.push_back(FormatContact(masked));
    if (out.pns_provider.empty()) {
      auto push = ParsePushParams(original.uri);
      if (push.ok() && push->has_value()) out.pns_provider = (*push)->provider_name;
    }
  }
  return out;
}

std::vector<absl::Duration> GrantedExpiries(const RegisterCheck& check,
                                            const std::vector<std::string>& masquerade_values,
                                            const ContactList& backend_contacts,
                                            std::optional<uint32_t> expires_header) {
  std::vector<absl::Duration> granted;
  if (check.wildcard || check.fetch) return granted;
  for (size_t i = 0; i < masquerade_values.size() && i < check.expiries.size(); ++i) {
    const absl::Duration asked = check.expiries[i];
    absl::Duration g = asked;
    if (!backend_contacts.contacts.empty()) {
      g = absl::ZeroDuration();  // listed by the backend or not registered there
      for (const Contact& c : backend_contacts.contacts) {
        if (Param(c.uri, kMasqueradeParam).value_or("") == masquerade_values[i]) {
          std::optional<uint32_t> e = c.expires();
          if (!e) e = expires_header;
          g = e ? absl::Seconds(*e) : asked;
          break;
        }
      }
    } else if (expires_header && asked > absl::ZeroDuration()) {
      g = std::min(g, absl::Seconds(*expires_header));
    }
    granted.push_back(g);
  }
  return granted;
}

std::vector<std::string> AnswerContacts(const RegisterRequest& request,
                                        const std::vector<absl::Duration>& granted) {
  std::vector<std::string> answer;
  if (request.contacts.wildcard) return answer;
  for (size_t i = 0; i < request.contacts.contacts.size() && i < granted.size(); ++i) {
    if (granted[i] <= absl::ZeroDuration()) continue;
    Contact c = request.contacts.contacts[i];
    c.SetParam("expires", absl::StrCat(absl::ToInt64Seconds(granted[i])));
    answer.push_back(FormatContact(c));
  }
  return answer;
}

std::vector<std::string> FetchContacts(const std::vector<Binding>& bindings, absl::Time now) {
  std::vector<std::string> answer;
  answer.reserve(bindings.size());
  for (const Binding& b : bindings) {
    Contact c;
    c.uri = b.contact;
    std::erase_if(c.uri.params, [](const auto& p) { return IsPushParamName(p.first); });
    c.SetParam("expires",
               absl::StrCat(std::max<int64_t>(0, absl::ToInt64Seconds(b.expires_at - now))));
    answer.push_back(FormatContact(c));
  }
  return answer;
}

std::string FeatureCaps(absl::string_view pns_provider) {
  return absl::StrCat("*;+sip.pns=\"", pns_provider, "\"");
}

absl::Duration FlowKeepTime(const RegisterCheck& check, absl::Duration transaction_timeout) {
  absl::Duration longest = transaction_timeout;
  for (absl::Duration d : check.expiries) longest = std::max(longest, d);
  return longest + absl::Seconds(30);
}

bool NamesContactHeader(absl::string_view name) {
  return absl::StartsWithIgnoreCase(name, "contact") || absl::StartsWithIgnoreCase(name, "m:") ||
         absl::EqualsIgnoreCase(name, "m");
}

std::string BackendRefusalLabel(int status) { return absl::StrCat("backend_", status / 100, "xx"); }

}  // namespace pushgate::proxy
