// Stateful relay of the requests other than REGISTER that the proxy forwards itself (a phone
// using the gateway as its outbound proxy): one Transaction each; provisional responses of an
// INVITE (not 100) and the final response go back to the phone without our Via, a CANCEL
// cancels the relayed INVITE, and nta's own 408/503 become outcomes. Timer C (RFC 3261 16.6 step
// 11, 16.7 step 2): a relayed INVITE without a final answer after `timer_c` is cancelled toward
// the next hop and the phone answered 408, so no transaction stays in flight for ever.
//
// Threads: loop thread only. The agent, the transactions and the metrics outlive the relay.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/proxy_metrics.h"
#include "proxy/sofia/sofia_util.h"
#include "proxy/sofia/transactions.h"
#include "proxy/sofia/wakeup_timer.h"
#include "spdlog/logger.h"

namespace pushgate::proxy::sofia {

// nta's own final answer on a client transaction (no response from the next hop).
Outcome InternalFailure(int status);

class StatefulRelay final : public TransactionOwner {
 public:
  // `loop` and `clock` run Timer C (`timer_c`, RFC 3261's "greater than 3 minutes" by default).
  StatefulRelay(nta_agent_t* agent, Transactions& txns, ProxyMetrics& metrics, SofiaLoop& loop,
                const Clock& clock, absl::Duration timer_c);

  // Sends `msg` (the request of `irq`, ready to forward) toward `route` (empty: the request URI)
  // and relays the answers; 503 when it cannot be sent.
  void Relay(IncomingPtr irq, const std::string& method, MsgPtr msg, const std::string& route);

  void OnResponse(Transaction& txn, nta_outgoing_t* orq, const sip_t* sip) override;

 private:
  void StartTimerC(uint64_t id);
  void StopTimerC(uint64_t id);
  void OnTimerC(uint64_t id);

  nta_agent_t* agent_;
  Transactions& txns_;
  ProxyMetrics& metrics_;
  std::shared_ptr<spdlog::logger> log_;
  const Clock& clock_;
  absl::Duration timer_c_;
  WakeupTimer timer_;
  absl::flat_hash_map<uint64_t, absl::Time> timer_c_at_;  // relayed INVITEs by transaction id
};

}  // namespace pushgate::proxy::sofia
