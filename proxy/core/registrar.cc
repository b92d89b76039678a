#include "proxy/core/registrar.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "proxy/core/push_params.h"

namespace pushgate::proxy {
namespace {

SipError Error(Outcome outcome, std::string reason) {
  SipError e;
  e.outcome = outcome;
  e.status = StatusOf(outcome);
  e.reason = std::move(reason);
  return e;
}

}  // namespace

RegisterCheck CheckRegister(const RegisterRequest& request, const RegistrarPolicy& policy) {
  RegisterCheck check;
  const ContactList& list = request.contacts;
  if (list.wildcard) {
    if (!list.contacts.empty()) {
      check.error = Error(Outcome::kContactRules, "Contact: * must be the only contact");
    } else if (!request.expires_header || *request.expires_header != 0) {
      check.error = Error(Outcome::kContactRules, "Contact: * requires Expires: 0");
    } else {
      check.wildcard = true;
    }
    return check;
  }
  if (list.contacts.empty()) {
    check.fetch = true;
    return check;
  }
  if (static_cast<int>(list.contacts.size()) > policy.max_contacts_per_register) {
    check.error =
        Error(Outcome::kTooManyContacts, absl::StrCat("Too many contacts in one REGISTER (max ",
                                                      policy.max_contacts_per_register, ")"));
    return check;
  }
  for (const Contact& contact : list.contacts) {
    auto push = ParsePushParams(contact.uri);
    if (!push.ok()) {
      check.error = Error(Outcome::kContactRules, std::string(push.status().message()));
      check.expiries.clear();
      return check;
    }
    absl::Duration expiry = policy.default_expires;
    if (auto e = contact.expires()) {
      expiry = absl::Seconds(*e);
    } else if (request.expires_header) {
      expiry = absl::Seconds(*request.expires_header);
    }
    if (expiry != absl::ZeroDuration() && expiry < policy.min_expires) {
      SipError e = Error(Outcome::kIntervalTooBrief, "Interval Too Brief");
      e.headers.emplace_back("Min-Expires", absl::StrCat(absl::ToInt64Seconds(policy.min_expires)));
      check.error = std::move(e);
      check.expiries.clear();
      return check;
    }
    check.expiries.push_back(std::min(expiry, policy.max_expires));
  }
  return check;
}

Binding MakeBinding(const RegisterRequest& request, const Contact& contact, absl::Duration granted,
                    absl::Time now) {
  Binding b;
  b.aor = request.aor;
  b.contact = contact.uri;
  b.instance_id = contact.instance();
  b.reg_id = contact.reg_id().value_or(0);
  b.q = contact.q();
  if (auto push = ParsePushParams(contact.uri); push.ok()) b.push = *std::move(push);
  b.received = request.source;
  b.flow_token = request.flow_token;
  b.expires_at = now + granted;
  b.call_id = request.call_id;
  b.cseq = request.cseq;
  b.updated_at = now;
  return b;
}

bool SameDevice(const Binding& existing, const Binding& incoming) {
  const bool both_instances = !existing.instance_id.empty() && !incoming.instance_id.empty();
  if (both_instances && existing.instance_id == incoming.instance_id &&
      existing.reg_id == incoming.reg_id) {
    return true;
  }
  const std::string a = existing.push_key();
  if (!a.empty() && a == incoming.push_key()) return true;
  return !both_instances && UriEquivalent(existing.contact, incoming.contact);
}

std::vector<Binding> ApplyRegistration(std::vector<Binding> existing,
                                       const RegisterRequest& request,
                                       const std::vector<absl::Duration>& granted, absl::Time now,
                                       const RegistrarPolicy& policy) {
  std::erase_if(existing, [&](const Binding& b) { return b.expired(now); });
  if (request.contacts.wildcard) return {};
  const auto& contacts = request.contacts.contacts;
  for (size_t i = 0; i < contacts.size(); ++i) {
    const absl::Duration g = i < granted.size() ? granted[i] : absl::ZeroDuration();
    Binding incoming = MakeBinding(request, contacts[i], g, now);
    // RFC 3261 10.3 step 7: a REGISTER older than the one that made the binding (same Call-ID,
    // lower CSeq: answers relayed out of order) must not undo it.
    const bool stale = std::any_of(existing.begin(), existing.end(), [&](const Binding& b) {
      return SameDevice(b, incoming) && b.call_id == incoming.call_id && b.cseq > incoming.cseq;
    });
    if (stale) continue;
    std::erase_if(existing, [&](const Binding& b) { return SameDevice(b, incoming); });
    if (g > absl::ZeroDuration()) existing.push_back(std::move(incoming));
  }
  const size_t max = static_cast<size_t>(std::max(policy.max_contacts_per_aor, 1));
  if (existing.size() > max) {
    // Most recently updated first; ties keep the later position (newer) first.
    std::stable_sort(existing.begin(), existing.end(), [](const Binding& a, const Binding& b) {
      return a.updated_at > b.updated_at;
    });
    // stable_sort keeps insertion order among equal times; for this REGISTER's bindings
    // (same updated_at) that order is the REGISTER order, all of them newer than the rest.
    existing.resize(max);
  }
  std::stable_sort(existing.begin(), existing.end(), [](const Binding& a, const Binding& b) {
    if (a.q != b.q) return a.q > b.q;
    return a.updated_at > b.updated_at;
  });
  return existing;
}

}  // namespace pushgate::proxy
