#include "proxy/sofia/stateful_relay.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "proxy/sofia/forwarding.h"

namespace pushgate::proxy::sofia {

Outcome InternalFailure(int status) {
  return status == 408 ? Outcome::kBackendTimeout : Outcome::kBackendNoAnswer;
}

StatefulRelay::StatefulRelay(nta_agent_t* agent, Transactions& txns, ProxyMetrics& metrics,
                             SofiaLoop& loop, const Clock& clock, absl::Duration timer_c)
    : agent_(agent),
      txns_(txns),
      metrics_(metrics),
      log_(log::Get("proxy.sofia")),
      clock_(clock),
      timer_c_(timer_c),
      timer_(loop, clock, [this](uint64_t id) { OnTimerC(id); }) {
  if (!timer_.ok()) log_->critical("su_timer_create failed: relayed INVITEs have no timer C");
}

void StatefulRelay::Relay(IncomingPtr irq, const std::string& method, MsgPtr msg,
                          const std::string& route) {
  const bool invite = nta_incoming_method(irq.get()) == sip_method_invite;
  Transaction& txn = txns_.Open(*this, std::move(irq), method);
  const uint64_t id = txn.id;
  if (!txns_.Send(agent_, txn, RouteUrl(route), std::move(msg))) {
    txns_.Reply(id, Outcome::kBackendUnreachable);
    return;
  }
  metrics_.Forwarded(method).Inc();
  Transaction* t = txns_.Find(id);
  if (t != nullptr && invite) {  // else answered from inside Send
    txns_.ForwardCancel(*t);
    StartTimerC(id);
  }
}

void StatefulRelay::StartTimerC(uint64_t id) {
  const absl::Time at = clock_.Now() + timer_c_;
  timer_c_at_[id] = at;
  timer_.Reschedule(id, std::nullopt, at);
}

void StatefulRelay::StopTimerC(uint64_t id) {
  auto it = timer_c_at_.find(id);
  if (it == timer_c_at_.end()) return;
  timer_.Reschedule(id, it->second, std::nullopt);
  timer_c_at_.erase(it);
}

void StatefulRelay::OnTimerC(uint64_t id) {
  timer_c_at_.erase(id);
  Transaction* txn = txns_.Find(id);
  if (txn == nullptr) return;  // closed otherwise (shutdown)
  log_->warn("{}: no final answer within timer C ({}): cancelled, answered 408", txn->method,
             absl::FormatDuration(timer_c_));
  metrics_.TimerC().Inc();
  // The CANCEL goes out on its own transaction (nta sends it once the INVITE had a provisional
  // response, RFC 3261 9.1); the INVITE's client transaction absorbs the 487 after we close.
  if (txn->orq) nta_outgoing_tcancel(txn->orq.get(), nullptr, nullptr, TAG_END());
  txns_.Reply(id, Outcome::kRelayTimerC);
}

void StatefulRelay::OnResponse(Transaction& txn, nta_outgoing_t* orq, const sip_t* sip) {
  const int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
  const bool internal = sip == nullptr || nta_sip_is_internal(sip);
  if (status >= 200) StopTimerC(txn.id);
  if (status < 200) {
    // Provisional: relay for INVITE (ringing), absorb otherwise. 100 stays hop by hop.
    if (status > 100 && !internal && nta_incoming_method(txn.irq.get()) == sip_method_invite) {
      if (MsgPtr copy = ResponseToRelay(orq)) nta_incoming_mreply(txn.irq.get(), copy.release());
    }
    return;
  }
  if (internal) {
    log_->warn("{} to the backend failed: {} (no answer)", txn.method, status);
    txns_.Reply(txn.id, InternalFailure(status));
    return;
  }
  MsgPtr copy = ResponseToRelay(orq);
  if (!copy) {
    txns_.Reply(txn.id, Outcome::kInternalError);
    return;
  }
  txns_.Relay(txn.id, std::move(copy));
}

}  // namespace pushgate::proxy::sofia
