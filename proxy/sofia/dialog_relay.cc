#include "proxy/sofia/dialog_relay.h"

#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>

#include <string>
#include <utility>

#include "proxy/core/relay_rules.h"

namespace pushgate::proxy::sofia {

struct DialogRelay::Relay {
  DialogRelay* owner = nullptr;
  uint64_t id = 0;
  IncomingPtr irq;  // declared first: the client transaction goes first
  OutgoingPtr orq;
};

DialogRelay::DialogRelay(SofiaLoop& loop, nta_agent_t* agent, const RouteSet& routes,
                         FlowLookup flows, RetryAfterConfig retry_after)
    : loop_(loop),
      agent_(agent),
      routes_(routes),
      flows_(std::move(flows)),
      retry_after_(std::move(retry_after)),
      log_(log::Get("proxy.calls")),
      alive_(std::make_shared<DialogRelay*>(this)) {}

DialogRelay::~DialogRelay() {
  alive_.reset();
  for (auto& [id, relay] : relays_) {
    relay->orq.reset();
    ReplyAndClose(std::move(relay->irq), Outcome::kShuttingDown, retry_after_);
  }
}

int DialogRelay::OwnRoutes(const sip_t* sip) const {
  return OwnRoutesOf(routes_, sip, /*parse=*/false).count;
}

bool DialogRelay::NamesPhone(const sip_t* sip) const {
  OwnRouteEntries own = OwnRoutesOf(routes_, sip);
  std::optional<std::string> token = flows_ ? routes_.NamedFlow(own.parsed) : std::nullopt;
  if (token && flows_(*token) != nullptr) return true;
  return PhoneAddress(own).has_value();
}

std::optional<TransportInfo> DialogRelay::PhoneAddress(const OwnRouteEntries& own) const {
  auto phone = routes_.NamedPhoneAddress(own.parsed);
  if (phone.ok()) return *phone;
  log_->warn("in-dialog request with a bad phone address in our Route: {}",
             phone.status().message());
  return std::nullopt;
}

tport_t* DialogRelay::FlowToward(const OwnRouteEntries& own, const TportRef& in) const {
  std::optional<std::string> token = flows_ ? routes_.NamedFlow(own.parsed) : std::nullopt;
  tport_t* flow = token ? flows_(*token) : nullptr;
  // Over that very connection: the request comes from the phone and goes the other way.
  return flow != nullptr && in.get() == flow ? nullptr : flow;
}

void DialogRelay::HandleInDialog(nta_incoming_t* raw_irq, const sip_t* sip) {
  IncomingPtr irq(raw_irq);
  const bool ack = sip->sip_request->rq_method == sip_method_ack;
  if (TooManyHops(MaxForwardsOf(sip), ack)) {
    return ReplyAndClose(std::move(irq), Outcome::kTooManyHops, retry_after_);
  }
  MsgPtr original(nta_incoming_getrequest(irq.get()));
  const OwnRouteEntries own = OwnRoutesOf(routes_, sip);
  MsgPtr msg = original ? CopyForForward(original.get(), own.count) : nullptr;
  if (!msg) return ReplyAndClose(std::move(irq), Outcome::kInternalError, retry_after_);
  TportRef in = TportRef::Adopt(nta_incoming_transport(agent_, irq.get(), nullptr));
  tport_t* flow = FlowToward(own, in);
  std::optional<TransportInfo> phone = flow == nullptr ? PhoneAddress(own) : std::nullopt;
  std::optional<TransportInfo> source = phone ? SourceOf(original.get(), in.get()) : std::nullopt;
  std::string target =
      InDialogNextHop(LooseTarget(sip_object(msg.get())), flow != nullptr, phone, source);
  if (ack) {
    nta_msg_tsend(agent_, msg.release(), RouteUrl(target),
                  TAG_IF(flow != nullptr, NTATAG_TPORT(flow)), TAG_END());
    return;  // `irq` destroyed: an ACK has no answer
  }
  Forward(std::move(irq), std::move(msg), target, flow,
          sip->sip_request->rq_method == sip_method_invite);
}

void DialogRelay::Forward(IncomingPtr irq, MsgPtr msg, const std::string& target, tport_t* flow,
                          bool invite) {
  auto relay = std::make_unique<Relay>();
  relay->owner = this;
  relay->id = next_id_++;
  relay->irq = std::move(irq);
  Relay* raw = relay.get();
  const uint64_t id = relay->id;
  relays_.emplace(id, std::move(relay));
  if (invite) {
    // A re-INVITE the sender CANCELs: CANCEL the relayed one too (held by nta until its
    // provisional response, RFC 3261 9.1).
    nta_incoming_bind(raw->irq.get(), &DialogRelay::OnCancelCb,
                      reinterpret_cast<nta_incoming_magic_t*>(raw));
  }
  nta_outgoing_t* orq = nta_outgoing_mcreate(
      agent_, &DialogRelay::OnResponseCb, reinterpret_cast<nta_outgoing_magic_t*>(raw),
      RouteUrl(target), msg.get(), TAG_IF(flow != nullptr, NTATAG_TPORT(flow)), TAG_END());
  auto it = relays_.find(id);
  if (orq == nullptr) {
    if (it != relays_.end()) {
      ReplyAndClose(std::move(it->second->irq), Outcome::kNextHopUnreachable, retry_after_);
      relays_.erase(it);
    }
    return;
  }
  static_cast<void>(msg.release());  // nta owns it now
  if (it != relays_.end() && !it->second->orq) it->second->orq.reset(orq);
}

int DialogRelay::OnCancelCb(nta_incoming_magic_t* magic, nta_incoming_t*,
                            const sip_t* sip) noexcept {
  auto* relay = reinterpret_cast<Relay*>(magic);
  if (sip != nullptr && sip->sip_request != nullptr &&
      sip->sip_request->rq_method == sip_method_cancel && relay->orq) {
    nta_outgoing_tcancel(relay->orq.get(), nullptr, nullptr, TAG_END());
  }
  return 0;
}

int DialogRelay::OnResponseCb(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                              const sip_t* sip) noexcept {
  auto* relay = reinterpret_cast<Relay*>(magic);
  relay->owner->OnResponse(*relay, orq, sip);
  return 0;
}

void DialogRelay::OnResponse(Relay& relay, nta_outgoing_t* orq, const sip_t* sip) {
  const int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
  ResponseRelay decision = RelayResponse(status, sip == nullptr || nta_sip_is_internal(sip));
  if (decision.action == ResponseRelay::Action::kIgnore) return;
  MsgPtr response;
  if (decision.action == ResponseRelay::Action::kRelay) {
    response = ResponseToRelay(orq);
    if (!response) decision = RelayResponse(status, /*internal=*/true);
  }
  if (relay.irq) {
    if (response) {
      nta_incoming_mreply(relay.irq.get(), response.release());
    } else {
      ReplyWith(relay.irq.get(), decision.outcome, retry_after_);
    }
  }
  if (decision.done) FreeLater(relay.id);
}

// Freed on the next loop turn (never inside the nta callback that still uses it).
void DialogRelay::FreeLater(uint64_t id) {
  loop_.Post([alive = std::weak_ptr<DialogRelay*>(alive_), id] {
    auto self = alive.lock();
    if (self) (*self)->relays_.erase(id);
  });
}

}  // namespace pushgate::proxy::sofia
