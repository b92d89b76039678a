// Incoming calls through the gateway (the call half of the SIP side): an INVITE or MESSAGE from
// the backend whose request URI was restored to a CallTarget (one phone of an AOR, or the whole
// AOR: proxy/core/call_target.h) is forked to its bindings by the pure proxy/core Fork; this
// class carries its actions out on the sofia loop:
//  - branches: nta client transactions to each binding's contact (over its own connection when
//    the binding has a flow token, else to where its REGISTER came from: BranchHopFor), with our
//    Record-Route (RouteSet: two entries, RFC 5658, when the call came in over another transport
//    than the branch leaves on) and Max-Forwards decremented (RFC 3261 16.6); a branch CANCEL
//    waits for the branch's provisional response and is dropped if a final one comes first
//    (RFC 3261 9.1, done by nta); bindings pointing back at us are never called;
//  - pushes: PushClient (BuildPushRequest); results come back on the loop -> Fork::OnPushResult;
//    TOKEN_INVALID removes the binding from the store;
//  - timers at Fork::NextWakeup (one WakeupTimer for all calls), the store's registration
//    listener -> Fork::OnRegistration (fork late: the pending INVITE goes to the new contact at
//    once; with the Redis store, registrations made through other replicas arrive by pub/sub);
//  - responses relayed to the caller (provisional, the winning final and its retransmissions:
//    ForkResponse), caller CANCEL; a 2xx the caller cannot take (it cancelled, another branch
//    won) is ACKed and ended with a BYE of ours (ReleaseAnswer).
// In-dialog requests (our Record-Route come back as Route) are DialogRelay's: CallRouter is the
// SIP proxy's CallHandler and hands them over.
//
// Hooks for the SIP proxy's request dispatch: HandleIncoming() and HandleInDialog() take over
// the server transaction. Loop thread only (construct and destroy on it too). Owns its calls
// (CallTable) and through them every transaction (IncomingPtr/OutgoingPtr); the destructor
// answers 503 to callers still waiting.
#pragma once

#include <sofia-sip/nta.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/log.h"
#include "proxy/core/fork.h"
#include "proxy/core/outcomes.h"
#include "proxy/core/relay_rules.h"
#include "proxy/core/route_set.h"
#include "proxy/push/push_client.h"
#include "proxy/sofia/call_table.h"
#include "proxy/sofia/dialog_relay.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/sip_proxy.h"
#include "proxy/sofia/sofia_util.h"
#include "proxy/sofia/wakeup_timer.h"
#include "proxy/store/binding_store.h"

namespace pushgate::proxy::sofia {

struct CallRouterOptions {
  ForkPolicy fork;
  absl::Duration push_timeout = absl::Seconds(5);  // gRPC deadline of one push
  // Our own URI for Record-Route ("sip:192.0.2.1:5060", AddressUri's kRecordRoute form; ";lr"
  // is added).
  std::string record_route;
  // Our Record-Route URI per transport (no ";lr"), for RFC 5658 double record-routing when a
  // call comes in over one transport and leaves over another. A transport missing here gets
  // record_route's host with the port of the agent's listener of that transport.
  std::map<Transport, std::string> record_route_by_transport;
  // Signs the phone's address carried in our phone-side Record-Route (for phones without a kept
  // connection: UDP behind NAT), so in-dialog requests reach the phone where its REGISTER came
  // from, and a forged Route cannot send requests anywhere else. The masquerade secret (replicas
  // share it). Empty: no address carried (in-dialog requests go to the request URI).
  std::string route_secret;
  // Apple team id for legacy-parameter phones (see BuildPushRequest); "" = none.
  std::string legacy_apns_team;
  // Grace time a finished call stays around for late 2xx and branch CANCELs.
  absl::Duration linger = absl::Seconds(32);
  // Retry-After of our own 503s (the outcome table's; RetryAfterOf the SIP proxy's options).
  RetryAfterConfig retry_after;
};

class CallRouter final : public CallHandler {
 public:
  // `agent`, `store` and `push` (may be null: no pushes) must outlive the router. The route set
  // is built from `options` and the agent's listeners (a bad URI is logged: no route set).
  CallRouter(SofiaLoop& loop, nta_agent_t* agent, BindingStore& store, PushClient* push,
             const Clock& clock, CallRouterOptions options, FlowLookup flows);
  ~CallRouter() override;
  CallRouter(const CallRouter&) = delete;
  CallRouter& operator=(const CallRouter&) = delete;

  // An INVITE or MESSAGE whose request URI restored to `target`. Takes over `irq` (answers and
  // destroys it). Max-Forwards 0 must have been answered (483) by the caller.
  void HandleIncoming(nta_incoming_t* irq, const sip_t* sip, const CallTarget& target) override;

  // True when the request's top Route is our Record-Route (an in-dialog request of a call).
  bool IsOurRoute(const sip_t* sip) const override;
  // How many of the request's top Route entries are ours: 1, or 2 for an RFC 5658 pair (two
  // consecutive own entries of different transports); 0 when the top one is not ours.
  int OwnRoutes(const sip_t* sip) const override;
  // True when one of our Route entries names a phone: a flow still connected, or a signed
  // address (see CallRouterOptions::route_secret).
  bool NamesPhone(const sip_t* sip) const override;
  // DialogRelay::HandleInDialog. Takes over `irq`.
  void HandleInDialog(nta_incoming_t* irq, const sip_t* sip) override;
  // RouteSet::RecordRoutes: the Record-Route URIs (top first, without ";lr") for a request
  // received over `in` and sent over `out`, naming the phone by `flow_token`, else `phone`.
  std::vector<std::string> RecordRoutesFor(
      std::optional<Transport> in, std::optional<Transport> out, const std::string& flow_token,
      const std::optional<TransportInfo>& phone) const override;

  const RouteSet& route_set() const { return route_set_; }
  // Calls in progress (forks not yet freed), for tests and metrics.
  size_t OpenCalls() const { return calls_.size(); }

 private:
  // C trampolines.
  static int OnBranchResponseCb(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                const sip_t* sip) noexcept;
  static int OnReleaseByeCb(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                            const sip_t* sip) noexcept;
  static int OnCallerCancelCb(nta_incoming_magic_t* magic, nta_incoming_t* irq,
                              const sip_t* sip) noexcept;

  Call& NewCall(nta_incoming_t* irq, const sip_t* sip, const CallTarget& target);
  void OnBindings(uint64_t call_id, absl::StatusOr<std::vector<Binding>> bindings);
  void StartFork(Call& call, std::vector<Binding> bindings);
  void Apply(Call& call, const Fork::Actions& actions);
  void SendBranch(Call& call, BranchId branch);
  // The caller's request for a branch: request URI the contact, our Record-Route on an INVITE.
  MsgPtr BranchRequest(const Call& call, const Binding& binding, const BranchHop& hop,
                       const std::string& ruri);
  void CancelBranch(Call& call, BranchId branch, const std::string& reason);
  // ACK the branch's 2xx (again, for a retransmission), then, the first time, BYE its dialog.
  void ReleaseAnswer(Call& call, BranchId branch);
  // A request of the phone's dialog made by its 2xx `ok` (request URI its Contact, else
  // `fallback`), for ACK or BYE; null when it cannot be built.
  MsgPtr DialogRequest(const sip_t* ok, sip_method_t method, const char* name, uint32_t cseq,
                       const Uri& fallback) const;
  void SendPush(Call& call, BranchId branch, PushKind kind);
  void RemoveDeadToken(const std::string& aor, const std::string& push_key);
  // A copy of the branch's response `status` to relay (its final one, else its latest), or null.
  MsgPtr BranchResponse(const Call& call, BranchId branch, int status) const;
  void ForwardResponse(Call& call, BranchId branch, int status);
  // Our own answer to the caller; `reason_header` (RFC 3326) when not empty.
  void Respond(Call& call, Outcome outcome, const std::string& reason_header = {});
  void OnBranchResponse(uint64_t call_id, BranchId branch, nta_outgoing_t* orq, const sip_t* sip);
  void OnCallerCancel(uint64_t call_id);
  void OnPushDone(uint64_t call_id, BranchId branch, const std::string& aor,
                  const std::string& push_key, absl::StatusOr<v1::PushResult> result);
  void OnRegistration(const std::string& aor, const Binding& binding);
  // The call's wakeup: Fork::NextWakeup, or the end of a finished call's linger.
  void ArmTimer(Call& call);
  void SetWakeup(Call& call, std::optional<absl::Time> at);
  void OnWakeup(uint64_t call_id);
  void MaybeFree(uint64_t call_id);
  void FreeCall(uint64_t call_id);
  // The live connection behind the binding's flow token, or null.
  tport_t* FlowOf(const Binding& binding) const;
  bool Reachable(const Binding& binding) const;
  Call* FindCall(uint64_t id);

  SofiaLoop& loop_;
  nta_agent_t* agent_;
  BindingStore& store_;
  PushClient* push_;
  const Clock& clock_;
  CallRouterOptions options_;
  FlowLookup flows_;
  std::shared_ptr<spdlog::logger> log_;
  RouteSet route_set_;
  DialogRelay dialog_relay_;  // uses route_set_
  std::unique_ptr<WakeupTimer> timer_;
  BindingStore::SubscriptionId subscription_ = 0;
  CallTable calls_;
  // Timers and push completions may run after the router is gone: they hold a weak reference.
  std::shared_ptr<CallRouter*> alive_;
};

}  // namespace pushgate::proxy::sofia
