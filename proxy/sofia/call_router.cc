#include "proxy/sofia/call_router.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/tport.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "proxy/core/sip_uri.h"
#include "proxy/push/push_request.h"
#include "proxy/sofia/call_metrics.h"
#include "proxy/sofia/forwarding.h"

namespace pushgate::proxy::sofia {
namespace {

using Type = ForkAction::Type;

CallMetrics& M() { return CallMetrics::Get(); }

// Our route set from the options and the agent's listeners; none (logged) when a URI is bad.
RouteSet BuildRouteSet(nta_agent_t* agent, const CallRouterOptions& options, spdlog::logger& log) {
  RouteSetConfig config;
  config.record_route = options.record_route;
  config.by_transport = options.record_route_by_transport;
  config.listeners = ListenersOf(agent);
  config.route_secret = options.route_secret;
  auto set = RouteSet::Create(config);
  if (set.ok()) return *std::move(set);
  log.error("{}: no Record-Route, in-dialog requests will not come back", set.status().message());
  return RouteSet();
}

}  // namespace

CallRouter::CallRouter(SofiaLoop& loop, nta_agent_t* agent, BindingStore& store, PushClient* push,
                       const Clock& clock, CallRouterOptions options, FlowLookup flows)
    : loop_(loop),
      agent_(agent),
      store_(store),
      push_(push),
      clock_(clock),
      options_(std::move(options)),
      flows_(std::move(flows)),
      log_(log::Get("proxy.calls")),
      route_set_(BuildRouteSet(agent_, options_, *log_)),
      dialog_relay_(loop_, agent_, route_set_, flows_, options_.retry_after),
      timer_(std::make_unique<WakeupTimer>(loop_, clock_, [this](uint64_t id) { OnWakeup(id); })),
      alive_(std::make_shared<CallRouter*>(this)) {
  if (!timer_->ok()) log_->critical("su_timer_create failed: calls will never time out");
  subscription_ = store_.Subscribe(
      [this](const std::string& aor, const Binding& binding) { OnRegistration(aor, binding); });
}

CallRouter::~CallRouter() {
  store_.Unsubscribe(subscription_);
  alive_.reset();
  timer_.reset();
  for (const auto& [id, call] : calls_.all()) {
    call->branches.clear();
    if (!call->final_sent) {
      ReplyAndClose(std::move(call->irq), Outcome::kShuttingDown, options_.retry_after);
    }
  }
  calls_.Clear();
  M().Open().Set(0);
}

Call* CallRouter::FindCall(uint64_t id) { return calls_.Find(id); }

bool CallRouter::IsOurRoute(const sip_t* sip) const {
  return sip != nullptr && sip->sip_route != nullptr && IsOwnUrl(route_set_, sip->sip_route->r_url);
}

int CallRouter::OwnRoutes(const sip_t* sip) const { return dialog_relay_.OwnRoutes(sip); }

bool CallRouter::NamesPhone(const sip_t* sip) const { return dialog_relay_.NamesPhone(sip); }

void CallRouter::HandleInDialog(nta_incoming_t* irq, const sip_t* sip) {
  dialog_relay_.HandleInDialog(irq, sip);
}

std::vector<std::string> CallRouter::RecordRoutesFor(
    std::optional<Transport> in, std::optional<Transport> out, const std::string& flow_token,
    const std::optional<TransportInfo>& phone) const {
  return route_set_.RecordRoutes(in, out, flow_token, phone);
}

tport_t* CallRouter::FlowOf(const Binding& binding) const {
  return binding.flow_token.empty() || !flows_ ? nullptr : flows_(binding.flow_token);
}

bool CallRouter::Reachable(const Binding& binding) const {
  return BranchReachable(binding, FlowOf(binding) != nullptr);
}

// ---------------------------------------------------------------------------------------------
// Incoming call

Call& CallRouter::NewCall(nta_incoming_t* irq, const sip_t* sip, const CallTarget& target) {
  auto call = std::make_unique<Call>(options_.fork, clock_.Now());
  call->router = this;
  call->aor = target.aor;
  call->target = target;
  call->irq.reset(irq);
  call->method = sip->sip_request->rq_method_name ? sip->sip_request->rq_method_name : "";
  call->request.reset(nta_incoming_getrequest(irq));
  TportRef in = TportRef::Adopt(nta_incoming_transport(agent_, irq, nullptr));
  if (in) call->in_transport = TportTransport(in.get());
  call->info = CallInfoOf(sip);
  Call& ref = calls_.Add(std::move(call));
  M().Open().Set(static_cast<double>(calls_.size()));
  return ref;
}

void CallRouter::HandleIncoming(nta_incoming_t* irq, const sip_t* sip, const CallTarget& target) {
  if (TooManyHops(MaxForwardsOf(sip), /*is_ack=*/false)) {
    return ReplyAndClose(IncomingPtr(irq), Outcome::kTooManyHops, options_.retry_after);
  }
  Call& call = NewCall(irq, sip, target);
  if (sip->sip_request->rq_method == sip_method_invite) {
    nta_incoming_bind(irq, &CallRouter::OnCallerCancelCb,
                      reinterpret_cast<nta_incoming_magic_t*>(&call));
  }
  log_->info("{} call-id={} for {}: looking up bindings", call.method, call.info.call_id,
             DebugString(target));
  std::weak_ptr<CallRouter*> alive = alive_;
  store_.Fetch(target.aor, call.started,
               [alive, id = call.id](absl::StatusOr<std::vector<Binding>> bindings) {
                 auto self = alive.lock();
                 if (self) (*self)->OnBindings(id, std::move(bindings));
               });
}

void CallRouter::OnBindings(uint64_t call_id, absl::StatusOr<std::vector<Binding>> bindings) {
  Call* call = FindCall(call_id);
  if (call == nullptr) return;
  if (!bindings.ok()) {
    log_->error("call-id={}: store fetch failed: {}", call->info.call_id,
                bindings.status().message());
    M().Calls("store_error").Inc();
    Respond(*call, Outcome::kStoreUnavailable);
    call->finished = true;
    MaybeFree(call_id);
    return;
  }
  StartFork(*call, std::move(*bindings));
}

void CallRouter::StartFork(Call& call, std::vector<Binding> bindings) {
  // The caller may have cancelled while the store was looking the bindings up.
  if (call.finished) return;
  // Loop prevention (RFC 3261 16.3 step 4 in spirit): a contact that points back at the gateway
  // (a masqueraded contact registered as the phone's own) would send the call to ourselves.
  bindings.erase(std::remove_if(bindings.begin(), bindings.end(),
                                [this](const Binding& b) { return route_set_.PointsAtUs(b); }),
                 bindings.end());
  // A call to one phone's masqueraded contact goes to that phone only (the backend calls each
  // of the AOR's phones on its own contact).
  const size_t of_aor = bindings.size();
  bindings = SelectBindings(call.target, std::move(bindings));
  if (const sip_t* rq = sip_object(call.request.get());
      rq != nullptr && rq->sip_from != nullptr && rq->sip_cseq != nullptr) {
    call.merge_key = MergeKey(call.target, bindings, call.info.call_id,
                              rq->sip_from->a_tag ? rq->sip_from->a_tag : "", rq->sip_cseq->cs_seq);
  }
  if (!call.merge_key.empty()) {
    for (uint64_t other : calls_.OfAor(call.aor)) {
      const Call* c = FindCall(other);
      if (other == call.id || c == nullptr || c->merge_key != call.merge_key) continue;
      // The backend called two contacts of this one phone: it gets the call once.
      log_->info("call-id={}: {} is called already by this call: merged request", call.info.call_id,
                 DebugString(call.target));
      Respond(call, Outcome::kMergedRequest);
      call.finished = true;
      MaybeFree(call.id);
      return;
    }
  }
  std::vector<bool> reachable;
  reachable.reserve(bindings.size());
  for (const Binding& b : bindings) reachable.push_back(Reachable(b));
  log_->info("call-id={} aor={}: {} of {} binding(s)", call.info.call_id, call.aor, bindings.size(),
             of_aor);
  Apply(call, call.fork.Start(bindings, reachable, clock_.Now(), ScopeOf(call.target)));
}

void CallRouter::Apply(Call& call, const Fork::Actions& actions) {
  uint64_t id = call.id;
  for (const ForkAction& a : actions) {
    switch (a.type) {
      case Type::kSendRequest:
        SendBranch(call, a.branch);
        break;
      case Type::kCancelBranch:
        CancelBranch(call, a.branch, a.reason);
        break;
      case Type::kSendPush:
        SendPush(call, a.branch, a.push_kind);
        break;
      case Type::kForwardProvisional:
      case Type::kForwardFinal:
        ForwardResponse(call, a.branch, a.status);
        break;
      case Type::kRespond:
        Respond(call, a.outcome, a.reason);
        break;
      case Type::kRemoveBinding:
        if (const Branch* b = call.fork.branch(a.branch); b != nullptr) {
          log_->info("call-id={}: push token of {} is dead: removing the binding",
                     call.info.call_id, DebugString(b->binding));
          RemoveDeadToken(call.aor, b->binding.push_key());
        }
        break;
      case Type::kFinished:
        call.finished = true;
        break;
      case Type::kReleaseAnswer:
        ReleaseAnswer(call, a.branch);
        break;
    }
    if (FindCall(id) == nullptr) return;
  }
  if (call.finished) {
    MaybeFree(id);
  } else {
    ArmTimer(call);
  }
}

MsgPtr CallRouter::BranchRequest(const Call& call, const Binding& binding, const BranchHop& hop,
                                 const std::string& ruri) {
  MsgPtr msg = CopyForForward(
      call.request.get(),
      OwnRoutesOf(route_set_, sip_object(call.request.get()), /*parse=*/false).count);
  if (!msg) return nullptr;
  sip_t* sip = sip_object(msg.get());
  sip_request_t* rq = sip_request_create(msg_home(msg.get()), sip->sip_request->rq_method,
                                         sip->sip_request->rq_method_name, RouteUrl(ruri), nullptr);
  if (rq == nullptr) {
    log_->warn("call-id={}: bad contact {}", call.info.call_id, DebugString(binding));
    return nullptr;
  }
  msg_header_replace(msg.get(), reinterpret_cast<msg_pub_t*>(sip),
                     reinterpret_cast<msg_header_t*>(sip->sip_request),
                     reinterpret_cast<msg_header_t*>(rq));
  if (sip->sip_request->rq_method != sip_method_invite) return msg;
  // The phone's flow (or, without a kept connection, the address it registered from) rides
  // along in our Record-Route, so in-dialog requests toward the phone reach it again. In over one
  // transport, out over another: two entries (RFC 5658), ours toward the phone on top.
  AddRecordRoutes(msg.get(), route_set_.RecordRoutes(call.in_transport, hop.transport,
                                                     binding.flow_token, hop.phone));
  return msg;
}

void CallRouter::SendBranch(Call& call, BranchId branch_id) {
  const Branch* branch = call.fork.branch(branch_id);
  if (branch == nullptr || !call.request) return;
  const Binding& binding = branch->binding;
  tport_t* flow = FlowOf(binding);
  BranchHop hop =
      BranchHopFor(binding, flow != nullptr, flow != nullptr ? TportTransport(flow) : std::nullopt);
  const std::string ruri = FormatUri(binding.contact);
  MsgPtr msg = BranchRequest(call, binding, hop, ruri);
  if (!msg) return;
  auto txn = std::make_unique<Call::BranchTxn>();
  txn->router = this;
  txn->call_id = call.id;
  txn->id = branch_id;
  Call::BranchTxn* raw = txn.get();
  call.branches[branch_id] = std::move(txn);
  nta_outgoing_t* orq = nta_outgoing_mcreate(
      agent_, &CallRouter::OnBranchResponseCb, reinterpret_cast<nta_outgoing_magic_t*>(raw),
      RouteUrl(hop.next_hop), msg.get(), TAG_IF(hop.via_flow, NTATAG_TPORT(flow)), TAG_END());
  if (orq == nullptr) {
    log_->warn("call-id={}: cannot send to {}", call.info.call_id, DebugString(binding));
    // Reported as unreachable (503) on the loop, after this action list.
    loop_.Post([alive = std::weak_ptr<CallRouter*>(alive_), cid = call.id, branch_id] {
      auto self = alive.lock();
      Call* c = self ? (*self)->FindCall(cid) : nullptr;
      if (c != nullptr)
        (*self)->Apply(*c, c->fork.OnResponse(branch_id, 503, (*self)->clock_.Now()));
    });
    return;
  }
  static_cast<void>(msg.release());  // nta owns it now
  M().Branches().Inc();
  if (!raw->orq) raw->orq.reset(orq);
  log_->info("call-id={}: branch {} -> {}", call.info.call_id, branch_id, log::RedactUri(ruri));
}

void CallRouter::CancelBranch(Call& call, BranchId branch_id, const std::string& reason) {
  auto it = call.branches.find(branch_id);
  if (it == call.branches.end() || !it->second->orq) return;
  if (it->second->final_status >= 200) return;
  nta_outgoing_tcancel(it->second->orq.get(), nullptr, nullptr,
                       TAG_IF(!reason.empty(), SIPTAG_REASON_STR(reason.c_str())), TAG_END());
  log_->info("call-id={}: branch {} cancelled{}", call.info.call_id, branch_id,
             reason.empty() ? "" : " (completed elsewhere)");
}

MsgPtr CallRouter::DialogRequest(const sip_t* ok, sip_method_t method, const char* name,
                                 uint32_t cseq, const Uri& fallback) const {
  MsgPtr msg(nta_msg_create(agent_, 0));
  if (!msg) return nullptr;
  sip_t* sip = sip_object(msg.get());
  su_home_t* home = msg_home(msg.get());
  const std::string target =
      ok->sip_contact != nullptr ? UrlString(ok->sip_contact->m_url) : FormatUri(fallback);
  sip_request_t* rq = sip_request_create(home, method, name, RouteUrl(target), nullptr);
  sip_cseq_t* cs = sip_cseq_create(home, cseq, method, name);
  if (rq == nullptr || cs == nullptr ||
      sip_add_tl(msg.get(), sip, SIPTAG_REQUEST(rq), SIPTAG_FROM(ok->sip_from),
                 SIPTAG_TO(ok->sip_to), SIPTAG_CALL_ID(ok->sip_call_id), SIPTAG_CSEQ(cs),
                 SIPTAG_MAX_FORWARDS_STR("70"), TAG_END()) < 0) {
    return nullptr;
  }
  return msg;
}

void CallRouter::ReleaseAnswer(Call& call, BranchId branch_id) {
  auto it = call.branches.find(branch_id);
  const Branch* branch = call.fork.branch(branch_id);
  if (it == call.branches.end() || branch == nullptr || !it->second->final_response) return;
  Call::BranchTxn& txn = *it->second;
  const sip_t* ok = sip_object(txn.final_response.get());
  if (ok == nullptr || ok->sip_cseq == nullptr || ok->sip_from == nullptr ||
      ok->sip_to == nullptr || ok->sip_call_id == nullptr) {
    return;
  }
  // Where the INVITE went: the phone's flow, else where it registered from.
  const Binding& binding = branch->binding;
  tport_t* flow = FlowOf(binding);
  const BranchHop hop =
      BranchHopFor(binding, flow != nullptr, flow != nullptr ? TportTransport(flow) : std::nullopt);
  const uint32_t seq = ok->sip_cseq->cs_seq;
  // RFC 3261 13.2.2.4: the ACK of a 2xx is its own transaction, end to end; sent again for each
  // retransmission of the 2xx.
  if (MsgPtr ack = DialogRequest(ok, sip_method_ack, "ACK", seq, binding.contact)) {
    nta_msg_tsend(agent_, ack.release(), RouteUrl(hop.next_hop),
                  TAG_IF(hop.via_flow, NTATAG_TPORT(flow)), TAG_END());
  }
  if (txn.bye || txn.bye_status != 0) return;  // a retransmission: ended already
  const char* why = call.fork.answered() ? "answered_elsewhere" : "caller_gone";
  M().ReleasedAnswers(why).Inc();
  MsgPtr bye = DialogRequest(ok, sip_method_bye, "BYE", seq + 1, binding.contact);
  nta_outgoing_t* orq =
      bye ? nta_outgoing_mcreate(agent_, &CallRouter::OnReleaseByeCb,
                                 reinterpret_cast<nta_outgoing_magic_t*>(&txn),
                                 RouteUrl(hop.next_hop), bye.get(),
                                 TAG_IF(hop.via_flow, NTATAG_TPORT(flow)), TAG_END())
          : nullptr;
  if (orq == nullptr) {
    log_->warn("call-id={}: cannot BYE the answer of branch {}", call.info.call_id, branch_id);
    txn.bye_status = 503;  // not again for a retransmission
    return;
  }
  static_cast<void>(bye.release());  // nta owns it now
  if (!txn.bye) txn.bye.reset(orq);
  log_->info("call-id={}: branch {} answered {} but nobody takes it ({}): ACK and BYE",
             call.info.call_id, branch_id, txn.final_status, why);
}

int CallRouter::OnReleaseByeCb(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                               const sip_t* sip) noexcept {
  auto* txn = reinterpret_cast<Call::BranchTxn*>(magic);
  int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
  if (status >= 200) txn->bye_status = status;
  return 0;
}

void CallRouter::SendPush(Call& call, BranchId branch_id, PushKind kind) {
  const Branch* branch = call.fork.branch(branch_id);
  if (branch == nullptr) return;
  uint64_t cid = call.id;
  std::weak_ptr<CallRouter*> alive = alive_;
  if (push_ == nullptr) {
    log_->warn("call-id={}: no pusher configured, cannot wake {}", call.info.call_id,
               DebugString(branch->binding));
    // Answered like any failed push, from the loop (not inside the fork's action list).
    loop_.Post([alive, cid, branch_id, aor = call.aor] {
      if (auto self = alive.lock()) {
        (*self)->OnPushDone(cid, branch_id, aor, "",
                            absl::FailedPreconditionError("no pusher configured"));
      }
    });
    return;
  }
  absl::Duration ttl = CallPushTtl(call.started, options_.fork.call_timeout, clock_.Now());
  v1::PushRequest request =
      BuildPushRequest(branch->binding, kind, call.info, ttl, options_.legacy_apns_team);
  log_->info("call-id={}: push {} to {}", call.info.call_id, static_cast<int>(kind),
             DebugString(branch->binding));
  push_->Send(std::move(request), options_.push_timeout,
              [alive, cid, branch_id, aor = call.aor,
               key = branch->binding.push_key()](absl::StatusOr<v1::PushResult> result) {
                auto self = alive.lock();
                if (!self) return;
                (*self)->OnPushDone(cid, branch_id, aor, key, std::move(result));
              });
}

void CallRouter::OnPushDone(uint64_t call_id, BranchId branch, const std::string& aor,
                            const std::string& push_key, absl::StatusOr<v1::PushResult> r) {
  const PushVerdict verdict = PushVerdictOf(r);
  std::string failure;  // for the caller's Reason header when no phone can be woken
  if (!r.ok()) {
    failure = std::string(r.status().message());
    log_->warn("push for call {} branch {} failed: {}", call_id, branch, failure);
  } else if (verdict.outcome == Fork::PushOutcome::kFailed) {
    failure = v1::Outcome_Name(r->outcome());
    if (r->provider_status() != 0) absl::StrAppend(&failure, " ", r->provider_status());
    if (!r->reason().empty()) absl::StrAppend(&failure, " ", r->reason());
    log_->warn("push for call {} branch {} not delivered: {}", call_id, branch, failure);
  }
  M().Pushes(verdict.label).Inc();
  Call* call = FindCall(call_id);
  if (call != nullptr) {
    Apply(*call, call->fork.OnPushResult(branch, verdict.outcome, clock_.Now(), failure));
  } else if (verdict.outcome == Fork::PushOutcome::kTokenInvalid && !push_key.empty()) {
    RemoveDeadToken(aor, push_key);  // the call is over, but a dead token is still dead
  }
}

void CallRouter::RemoveDeadToken(const std::string& aor, const std::string& push_key) {
  store_.RemoveByPushKey(
      aor, push_key, clock_.Now(), [log = log_](const absl::StatusOr<size_t>& n) {
        if (!n.ok()) log->warn("removing a dead push token failed: {}", n.status().message());
      });
}

MsgPtr CallRouter::BranchResponse(const Call& call, BranchId branch_id, int status) const {
  auto it = call.branches.find(branch_id);
  if (it == call.branches.end()) return nullptr;
  const Call::BranchTxn& txn = *it->second;
  if (status >= 200)
    return txn.final_response ? ResponseToRelay(txn.final_response.get()) : nullptr;
  return txn.orq ? ResponseToRelay(txn.orq.get()) : nullptr;
}

void CallRouter::ForwardResponse(Call& call, BranchId branch_id, int status) {
  if (!call.irq) return;
  const bool dropped = status >= 300 && call.final_sent;
  MsgPtr response = dropped ? nullptr : BranchResponse(call, branch_id, status);
  const ResponseRelay decision = ForkResponse(status, response != nullptr, call.final_sent);
  if (decision.action == ResponseRelay::Action::kIgnore) return;
  if (decision.action == ResponseRelay::Action::kAnswer) {
    // nta's own answer (timeout / unreachable): answer with the status ourselves.
    return Respond(call, decision.outcome);
  }
  if (decision.done) call.final_sent = true;
  if (nta_incoming_mreply(call.irq.get(), response.release()) < 0) {
    log_->warn("call-id={}: relaying {} failed", call.info.call_id, status);
  }
  if (decision.done) M().Calls(absl::StrCat(status / 100, "xx")).Inc();
}

void CallRouter::Respond(Call& call, Outcome outcome, const std::string& reason_header) {
  if (!call.irq) return;
  const OutcomeInfo& info = Describe(outcome);
  if (info.status >= 200) {
    if (call.final_sent) return;
    call.final_sent = true;
    M().Calls(absl::StrCat(info.status)).Inc();
    if (outcome == Outcome::kPushFailed) M().PushFailedCalls().Inc();
  }
  HeaderList extra;
  if (!reason_header.empty()) extra.emplace_back("Reason", reason_header);
  ReplyWith(call.irq.get(), AnswerFor(outcome, options_.retry_after, {}, extra));
  log_->info("call-id={}: answered {} {}{}{}", call.info.call_id, info.status, info.reason,
             reason_header.empty() ? "" : " ", reason_header);
}

int CallRouter::OnBranchResponseCb(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                   const sip_t* sip) noexcept {
  auto* txn = reinterpret_cast<Call::BranchTxn*>(magic);
  txn->router->OnBranchResponse(txn->call_id, txn->id, orq, sip);
  return 0;
}

void CallRouter::OnBranchResponse(uint64_t call_id, BranchId branch, nta_outgoing_t* orq,
                                  const sip_t* sip) {
  Call* call = FindCall(call_id);
  if (call == nullptr) return;
  auto it = call->branches.find(branch);
  if (it == call->branches.end()) return;
  Call::BranchTxn& txn = *it->second;
  if (!txn.orq) txn.orq.reset(orq);
  int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
  bool internal = sip == nullptr || nta_sip_is_internal(sip);
  if (status >= 200) {
    if (txn.final_status >= 200 && status >= 300) return;  // retransmission
    txn.final_status = status;
    if (!internal) txn.final_response.reset(nta_outgoing_getresponse(orq));
  }
  log_->debug("call-id={}: branch {} answered {}", call->info.call_id, branch, status);
  Apply(*call, call->fork.OnResponse(branch, status, clock_.Now()));
}

int CallRouter::OnCallerCancelCb(nta_incoming_magic_t* magic, nta_incoming_t* irq,
                                 const sip_t* sip) noexcept {
  auto* call = reinterpret_cast<Call*>(magic);
  if (sip != nullptr && sip->sip_request != nullptr &&
      sip->sip_request->rq_method == sip_method_cancel) {
    call->router->OnCallerCancel(call->id);
  }
  return 0;
}

void CallRouter::OnCallerCancel(uint64_t call_id) {
  Call* call = FindCall(call_id);
  if (call == nullptr) return;
  log_->info("call-id={}: caller cancelled", call->info.call_id);
  Apply(*call, call->fork.OnCallerCancel(clock_.Now()));
}

void CallRouter::OnRegistration(const std::string& aor, const Binding& binding) {
  if (route_set_.PointsAtUs(binding)) return;
  for (uint64_t id : calls_.OfAor(aor)) {  // a copy: Apply may free calls
    Call* call = FindCall(id);
    if (call == nullptr || call->fork.finished()) continue;
    bool reachable = Reachable(binding);
    if (!reachable) {
      // Registered over a TCP/TLS connection we do not hold (through another replica, or the
      // connection closed already): only the replica holding it could deliver the call.
      log_->warn("call-id={}: {} registered over a connection this replica does not hold",
                 call->info.call_id, DebugString(binding));
    }
    Fork::Actions actions = call->fork.OnRegistration(binding, reachable, clock_.Now());
    if (!actions.empty()) {
      M().LateDeliveries().Inc();
      log_->info("call-id={}: {} registered again", call->info.call_id, DebugString(binding));
    }
    Apply(*call, actions);
  }
}

void CallRouter::ArmTimer(Call& call) {
  if (call.free_scheduled) return;  // the fork is over: only the free wakeup counts
  std::optional<absl::Time> next = call.fork.NextWakeup();
  if (next != call.timer_at) SetWakeup(call, next);
}

void CallRouter::SetWakeup(Call& call, std::optional<absl::Time> at) {
  std::optional<absl::Time> from = call.timer_at;
  call.timer_at = at;
  timer_->Reschedule(call.id, from, at);
}

void CallRouter::OnWakeup(uint64_t call_id) {
  Call* call = FindCall(call_id);
  if (call == nullptr) return;
  call->timer_at.reset();
  if (call->free_scheduled) {
    FreeCall(call_id);
  } else if (!call->finished) {
    Apply(*call, call->fork.OnTimer(clock_.Now()));
  }
}

void CallRouter::MaybeFree(uint64_t call_id) {
  Call* call = FindCall(call_id);
  if (call == nullptr || call->free_scheduled) return;
  call->free_scheduled = true;
  bool all_final = std::all_of(call->branches.begin(), call->branches.end(), [](const auto& b) {
    return b.second->final_status >= 200 && (!b.second->bye || b.second->bye_status >= 200);
  });
  if (!call->final_sent && call->irq) {
    // The fork ended without an answer to the caller (should not happen): never leave it hanging.
    Respond(*call, Outcome::kInternalError);
  }
  if (!all_final) {
    // Late 2xx and branch CANCELs still need the call for a while.
    SetWakeup(*call, clock_.Now() + options_.linger);
    return;
  }
  SetWakeup(*call, std::nullopt);
  // Freed on the next loop turn (never inside an nta callback that still uses it).
  std::weak_ptr<CallRouter*> alive = alive_;
  loop_.Post([alive, call_id] {
    auto self = alive.lock();
    if (self) (*self)->FreeCall(call_id);
  });
}

void CallRouter::FreeCall(uint64_t call_id) {
  Call* call = FindCall(call_id);
  if (call == nullptr) return;
  if (call->timer_at) timer_->Reschedule(call_id, call->timer_at, std::nullopt);
  calls_.Remove(call_id);  // its transactions with it
  M().Open().Set(static_cast<double>(calls_.size()));
}

}  // namespace pushgate::proxy::sofia
