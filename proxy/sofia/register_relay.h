// The REGISTER path (register on response), in the order it runs:
//   1. classify  PlanRegister: request URI, To, domain, contacts, registrar checks (an outcome
//                when refused);
//   2. plan      the phone's flow kept (TCP/TLS), contacts masqueraded (MaskContacts);
//   3. relay     forwarded to the backend as one Transaction (bounded: the oldest REGISTER
//                waiting for the backend is answered 503 beyond max_pending_registers);
//   4. store     on the backend's 2xx, the granted expiries bound atomically in the store, one
//                registration of an AOR at a time (a fetch only reads);
//   5. answer    the backend's 2xx with the phone's own contacts (and Feature-Caps), or the
//                backend's refusal without the masqueraded contacts, or a store outcome.
//
// Threads: loop thread only. Everything given to the constructor outlives the relay.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "proxy/core/domain_policy.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/register_plan.h"
#include "proxy/sofia/flow_table.h"
#include "proxy/sofia/listeners.h"
#include "proxy/sofia/proxy_metrics.h"
#include "proxy/sofia/sip_proxy.h"
#include "proxy/sofia/transactions.h"
#include "proxy/store/binding_store.h"
#include "spdlog/logger.h"

namespace pushgate::proxy::sofia {

class RegisterRelay final : public TransactionOwner {
 public:
  // `backend` is options.backend_uri parsed (nullopt: RFC 3263 on the request URI).
  RegisterRelay(nta_agent_t* agent, const SipProxyOptions& options,
                const std::optional<Uri>& backend, const MasqueradeCodec& codec,
                BindingStore& store, const Clock& clock, Transactions& txns,
                const Listeners& listeners, FlowTable& flows, ProxyMetrics& metrics);

  // Takes over a REGISTER (Max-Forwards and draining already checked).
  void Handle(IncomingPtr irq, const sip_t* sip);

  void OnResponse(Transaction& txn, nta_outgoing_t* orq, const sip_t* sip) override;

 private:
  // 1. classify
  void Refuse(IncomingPtr irq, const RegisterPlan& plan);
  // 2. plan: the masqueraded contacts in `msg` (not for a fetch or "*"); an outcome on failure.
  std::optional<Outcome> Masquerade(RegisterState& reg, const RegisterPlan& plan, msg_t* msg);
  // 3. relay
  void Forward(Transaction& txn, MsgPtr msg);
  // 4. store, one registration of an AOR at a time.
  void Bind(Transaction& txn, std::vector<absl::Duration> granted);
  void UpdateBindings(uint64_t id, const std::string& aor, std::vector<absl::Duration> granted);
  void NextTurn(const std::string& aor);
  // 5. answer
  void Answer(uint64_t id, const std::string& aor, const std::vector<std::string>& contacts,
              const absl::Status& st);

  nta_agent_t* agent_;
  const SipProxyOptions& options_;
  const std::optional<Uri>& backend_;
  const MasqueradeCodec& codec_;
  BindingStore& store_;
  const Clock& clock_;
  Transactions& txns_;
  const Listeners& listeners_;
  FlowTable& flows_;
  ProxyMetrics& metrics_;
  DomainPolicy domains_;
  std::shared_ptr<spdlog::logger> log_;
  // AORs with a registration between store Fetch and Replace, and who waits for each.
  absl::flat_hash_map<std::string, std::deque<std::function<void()>>> aor_turns_;
};

}  // namespace pushgate::proxy::sofia
