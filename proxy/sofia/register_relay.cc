#include "proxy/sofia/register_relay.h"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/tport.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "proxy/core/request_route.h"
#include "proxy/sofia/forwarding.h"
#include "proxy/sofia/stateful_relay.h"

namespace pushgate::proxy::sofia {
namespace {

RegisterFacts FactsOf(const sip_t* sip, std::optional<TransportInfo> source) {
  RegisterFacts facts;
  facts.request_uri = UrlString(sip->sip_request->rq_url);
  if (sip->sip_to != nullptr) facts.to = UrlString(sip->sip_to->a_url);
  facts.contacts = ContactValues(sip);
  for (const sip_error_t* e = sip->sip_error; e != nullptr; e = e->er_next) {
    // Sofia files duplicates of single-instance headers here too, under their own class: only
    // entries of the error class are unparsable headers with a name.
    if (e->er_common->h_class != sip_error_class) continue;
    if (NamesContactHeader(e->er_name ? e->er_name : "")) facts.contact_unparsable = true;
  }
  if (sip->sip_expires != nullptr) facts.expires = sip->sip_expires->ex_delta;
  if (sip->sip_call_id && sip->sip_call_id->i_id) facts.call_id = sip->sip_call_id->i_id;
  facts.cseq = sip->sip_cseq ? sip->sip_cseq->cs_seq : 0;
  facts.source = std::move(source);
  return facts;
}

}  // namespace

RegisterRelay::RegisterRelay(nta_agent_t* agent, const SipProxyOptions& options,
                             const std::optional<Uri>& backend, const MasqueradeCodec& codec,
                             BindingStore& store, const Clock& clock, Transactions& txns,
                             const Listeners& listeners, FlowTable& flows, ProxyMetrics& metrics)
    : agent_(agent),
      options_(options),
      backend_(backend),
      codec_(codec),
      store_(store),
      clock_(clock),
      txns_(txns),
      listeners_(listeners),
      flows_(flows),
      metrics_(metrics),
      domains_(options.domains),
      log_(log::Get("proxy.sofia")) {}

void RegisterRelay::Handle(IncomingPtr irq, const sip_t* sip) {
  RequestOrigin origin = OriginOf(agent_, irq.get());
  RegisterPlan plan = PlanRegister(FactsOf(sip, origin.source), domains_, options_.registrar);
  if (plan.rejection) {
    Refuse(std::move(irq), plan);
    return;
  }
  if (origin.tport && tport_is_reliable(origin.tport.get())) {
    absl::Duration keep = FlowKeepTime(plan.check, options_.transaction_timeout);
    plan.request.flow_token = flows_.Register(origin.tport.get(), clock_.Now() + keep);
  }
  MsgPtr msg = ForwardCopy(irq.get(), listeners_.ours());
  if (!msg) {
    txns_.Refuse(std::move(irq), Outcome::kInternalError);
    return;
  }
  Transaction& txn = txns_.Open(*this, std::move(irq), "REGISTER");
  txn.reg = std::make_unique<RegisterState>();
  txn.reg->check = std::move(plan.check);
  if (!txn.reg->check.wildcard && !txn.reg->check.fetch) {
    if (std::optional<Outcome> failed = Masquerade(*txn.reg, plan, msg.get())) {
      txns_.Reply(txn.id, *failed);
      return;
    }
  }
  txn.reg->request = std::move(plan.request);
  Forward(txn, std::move(msg));
}

void RegisterRelay::Refuse(IncomingPtr irq, const RegisterPlan& plan) {
  const SipError& e = *plan.rejection;
  metrics_.Registrations(LabelOf(e.outcome)).Inc();
  log_->info("REGISTER refused: aor={} status={} reason=\"{}\"", plan.request.aor, e.status,
             e.reason);
  txns_.Refuse(std::move(irq), e.outcome, e.reason, e.headers);
}

std::optional<Outcome> RegisterRelay::Masquerade(RegisterState& reg, const RegisterPlan& plan,
                                                 msg_t* msg) {
  const Transport toward = NextHopTransport(backend_, plan.request_uri);
  auto advertised = listeners_.Advertised(
      toward, IsIpv6Literal(backend_ ? backend_->host : plan.request_uri.host));
  if (!advertised.ok()) {
    metrics_.Registrations(LabelOf(Outcome::kNoTransport)).Inc();
    log_->error("REGISTER aor={}: no listener for transport {} toward the backend",
                plan.request.aor, TransportName(toward));
    return Outcome::kNoTransport;
  }
  std::optional<std::string> insert_domain;
  if (options_.insert_domain) insert_domain = plan.to.host;
  MaskedContacts masked = MaskContacts(codec_, plan.request, reg.check, *advertised, insert_domain);
  sip_t* fsip = sip_object(msg);
  RemoveContacts(msg, fsip);
  for (const std::string& value : masked.values) {
    if (sip_add_make(msg, fsip, sip_contact_class, value.c_str()) < 0) {
      return Outcome::kInternalError;
    }
  }
  reg.masquerade_values = std::move(masked.masquerade_values);
  reg.pns_provider = std::move(masked.pns_provider);
  return std::nullopt;
}

void RegisterRelay::Forward(Transaction& txn, MsgPtr msg) {
  const uint64_t id = txn.id;
  txns_.AwaitBackend(txn);
  const size_t cap = std::max<size_t>(options_.max_pending_registers, 1);
  while (txns_.awaiting() > cap) {
    const uint64_t oldest = txns_.OldestAwaiting();
    log_->warn("too many pending REGISTERs: dropping {}", oldest);
    txns_.Reply(oldest, Outcome::kTooManyPending);
  }
  if (!txns_.Send(agent_, txn, RouteUrl(options_.backend_uri), std::move(msg))) {
    // Refused at once: nta called nothing back, `txn` is still open.
    metrics_.Registrations(LabelOf(Outcome::kRegistrarUnreachable)).Inc();
    log_->warn("REGISTER aor={}: cannot forward to the backend", txn.reg->request.aor);
    txns_.Reply(id, Outcome::kRegistrarUnreachable);
    return;
  }
  metrics_.Forwarded("REGISTER").Inc();
}

void RegisterRelay::OnResponse(Transaction& txn, nta_outgoing_t* orq, const sip_t* sip) {
  const int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
  if (status < 200) return;
  txns_.StopAwaiting(txn);
  if (sip == nullptr || nta_sip_is_internal(sip)) {
    // nta's own answer: the backend timed out (408) or could not be reached (503).
    const Outcome failure = InternalFailure(status);
    log_->warn("REGISTER to the backend failed: {} (no answer)", status);
    metrics_.Registrations(LabelOf(failure)).Inc();
    txns_.Reply(txn.id, failure);
    return;
  }
  MsgPtr copy = ResponseToRelay(orq);
  if (!copy) {
    txns_.Reply(txn.id, Outcome::kInternalError);
    return;
  }
  if (status >= 300) {
    // Not registered: relay as is (challenges, 423 Min-Expires...), minus masqueraded contacts.
    RemoveContacts(copy.get(), sip_object(copy.get()));
    metrics_.Registrations(BackendRefusalLabel(status)).Inc();
    log_->info("REGISTER relayed backend refusal: status={}", status);
    txns_.Relay(txn.id, std::move(copy));
    return;
  }
  RegisterState& reg = *txn.reg;
  ContactList listed;
  if (!reg.check.wildcard && !reg.check.fetch) {
    for (const std::string& value : ContactValues(sip)) {
      absl::Status st = AppendContacts(value, listed);
      if (!st.ok()) log_->warn("backend 2xx with unparsable Contact: {}", st.message());
    }
  }
  std::optional<uint32_t> expires;
  if (sip->sip_expires) expires = sip->sip_expires->ex_delta;
  std::vector<absl::Duration> granted =
      GrantedExpiries(reg.check, reg.masquerade_values, listed, expires);
  reg.response = std::move(copy);
  Bind(txn, std::move(granted));
}

void RegisterRelay::Bind(Transaction& txn, std::vector<absl::Duration> granted) {
  auto work = [this, id = txn.id, aor = txn.reg->request.aor,
               granted = std::move(granted)]() mutable {
    UpdateBindings(id, aor, std::move(granted));
  };
  auto [turn, first] = aor_turns_.try_emplace(txn.reg->request.aor);
  if (!first) {
    // Another registration of this AOR is between its Fetch and its Replace: with an
    // asynchronous store, running both at once would let the later Replace drop the earlier
    // one's binding. Each waits for the one before it.
    turn->second.push_back(std::move(work));
    return;
  }
  work();
}

void RegisterRelay::NextTurn(const std::string& aor) {
  auto it = aor_turns_.find(aor);
  if (it == aor_turns_.end()) return;
  if (it->second.empty()) {
    aor_turns_.erase(it);
    return;
  }
  std::function<void()> next = std::move(it->second.front());
  it->second.pop_front();
  next();
}

void RegisterRelay::UpdateBindings(uint64_t id, const std::string& aor,
                                   std::vector<absl::Duration> granted) {
  Transaction* txn = txns_.Find(id);
  if (txn == nullptr) {
    NextTurn(aor);
    return;
  }
  if (txn->reg->check.fetch) {
    // A query (no Contact): list the AOR's bindings, change nothing.
    store_.Fetch(aor, clock_.Now(), [this, id, aor](absl::StatusOr<std::vector<Binding>> found) {
      std::vector<std::string> contacts;
      if (found.ok()) contacts = FetchContacts(*found, clock_.Now());
      Answer(id, aor, contacts, found.status());
      NextTurn(aor);
    });
    return;
  }
  // The phone's own contacts and the expiry granted to each (removed ones are not listed).
  std::vector<std::string> contacts = AnswerContacts(txn->reg->request, granted);
  const absl::Time now = clock_.Now();
  // Atomic read-modify-write: with Redis, another replica may register a device of this AOR
  // at the same instant; the store re-applies the registration to what it then holds.
  BindingStore::Mutation apply = [request = std::move(txn->reg->request),
                                  granted = std::move(granted), now,
                                  rules = options_.registrar](std::vector<Binding> live) {
    return ApplyRegistration(std::move(live), request, granted, now, rules);
  };
  store_.Update(aor, now, std::move(apply),
                [this, id, aor, contacts = std::move(contacts)](const absl::Status& st) {
                  Answer(id, aor, contacts, st);
                  NextTurn(aor);
                });
}

void RegisterRelay::Answer(uint64_t id, const std::string& aor,
                           const std::vector<std::string>& contacts, const absl::Status& st) {
  Transaction* txn = txns_.Find(id);
  if (txn == nullptr) return;
  if (!st.ok()) {
    // ABORTED: the AOR kept changing under us (many devices of it registering at once).
    const Outcome failure =
        absl::IsAborted(st) ? Outcome::kStoreConflict : Outcome::kStoreUnavailable;
    metrics_.Registrations(LabelOf(failure)).Inc();
    if (failure == Outcome::kStoreConflict) {
      log_->warn("REGISTER aor={}: {}", aor, st.message());
    } else {
      log_->error("REGISTER aor={}: store operation failed: {}", aor, st.message());
    }
    txns_.Reply(id, failure);
    return;
  }
  RegisterState& reg = *txn->reg;
  MsgPtr msg = std::move(reg.response);
  sip_t* rsip = sip_object(msg.get());
  RemoveContacts(msg.get(), rsip);
  for (const std::string& c : contacts) {
    sip_add_make(msg.get(), rsip, sip_contact_class, c.c_str());
  }
  if (!reg.pns_provider.empty()) {
    std::string caps = absl::StrCat("Feature-Caps: ", FeatureCaps(reg.pns_provider));
    sip_add_make(msg.get(), rsip, sip_unknown_class, caps.c_str());
  }
  metrics_.Registrations(reg.check.fetch ? "fetched" : "ok").Inc();
  log_->info("REGISTER ok aor={} contacts={}", aor, contacts.size());
  txns_.Relay(id, std::move(msg));
}

}  // namespace pushgate::proxy::sofia
