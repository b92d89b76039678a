#include "proxy/sofia/stateful_relay.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "proxy/sofia/forwarding.h"

namespace pushgate::proxy::sofia {

Outcome InternalFailure(int status) {
  return status == 408 ? Outcome::kBackendTimeout : Outcome::kBackendNoAnswer;
}

StatefulRelay::StatefulRelay(nta_agent_t* agent, Transactions& txns, ProxyMetrics& metrics)
    : agent_(agent), txns_(txns), metrics_(metrics), log_(log::Get("proxy.sofia")) {}

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
  if (t != nullptr && invite) txns_.ForwardCancel(*t);  // else answered from inside Send
}

void StatefulRelay::OnResponse(Transaction& txn, nta_outgoing_t* orq, const sip_t* sip) {
  const int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
  const bool internal = sip == nullptr || nta_sip_is_internal(sip);
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
