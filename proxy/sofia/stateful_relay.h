// Stateful relay of the requests other than REGISTER that the proxy forwards itself (a phone
// using the gateway as its outbound proxy): one Transaction each; provisional responses of an
// INVITE (not 100) and the final response go back to the phone without our Via, a CANCEL
// cancels the relayed INVITE, and nta's own 408/503 become outcomes.
//
// Threads: loop thread only. The agent, the transactions and the metrics outlive the relay.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "proxy/sofia/proxy_metrics.h"
#include "proxy/sofia/sofia_util.h"
#include "proxy/sofia/transactions.h"
#include "spdlog/logger.h"

namespace pushgate::proxy::sofia {

// nta's own final answer on a client transaction (no response from the next hop).
Outcome InternalFailure(int status);

class StatefulRelay final : public TransactionOwner {
 public:
  StatefulRelay(nta_agent_t* agent, Transactions& txns, ProxyMetrics& metrics);

  // Sends `msg` (the request of `irq`, ready to forward) toward `route` (empty: the request URI)
  // and relays the answers; 503 when it cannot be sent.
  void Relay(IncomingPtr irq, const std::string& method, MsgPtr msg, const std::string& route);

  void OnResponse(Transaction& txn, nta_outgoing_t* orq, const sip_t* sip) override;

 private:
  nta_agent_t* agent_;
  Transactions& txns_;
  ProxyMetrics& metrics_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace pushgate::proxy::sofia
