#include "proxy/sofia/call_router.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics.h"
#include "proxy/core/sip_uri.h"
#include "proxy/push/push_request.h"

namespace pushgate::proxy::sofia {
namespace {

using Type = ForkAction::Type;

// Record-Route parameter carrying the phone's flow token.
constexpr char kFlowParam[] = "pgf";
// Record-Route parameter carrying the phone's address (transport, host, port), signed like a
// masquerade value: for phones without a kept connection (UDP, behind NAT).
constexpr char kPhoneParam[] = "pga";

const url_string_t* UrlStr(const std::string& s) {
  return s.empty() ? nullptr : reinterpret_cast<const url_string_t*>(s.c_str());
}

struct Metrics {
  metrics::Registry& r = metrics::Registry::Default();
  metrics::Counter& Calls(const std::string& result) {
    return r.GetCounter("pushgate_proxy_calls_total",
                        "Incoming calls (INVITE/MESSAGE from the backend) by final outcome.",
                        {{"result", result}});
  }
  metrics::Counter& Pushes(const std::string& result) {
    return r.GetCounter("pushgate_proxy_call_pushes_total",
                        "Pushes requested for incoming calls, by result.", {{"result", result}});
  }
  metrics::Counter& Branches() {
    return r.GetCounter("pushgate_proxy_call_branches_total",
                        "Requests sent to phones (fork branches, including late ones).");
  }
  metrics::Counter& LateDeliveries() {
    return r.GetCounter("pushgate_proxy_call_late_deliveries_total",
                        "Registrations that reached an open fork (fork late).");
  }
  metrics::Gauge& Open() {
    return r.GetGauge("pushgate_proxy_calls_open", "Incoming calls in progress.");
  }
};

Metrics& M() {
  static Metrics* m = new Metrics();
  return *m;
}

// A copy of `original` ready to forward: Max-Forwards decremented, the top `strip_routes` Route
// entries (ours) removed.
MsgPtr CopyForForward(msg_t* original, int strip_routes) {
  MsgPtr msg(msg_copy(original));
  if (!msg) return nullptr;
  sip_t* sip = sip_object(msg.get());
  unsigned long hops = sip->sip_max_forwards ? sip->sip_max_forwards->mf_count : 70;
  if (hops > 70) hops = 70;
  std::string mf = absl::StrCat(hops == 0 ? 0 : hops - 1);
  sip_add_tl(msg.get(), sip, SIPTAG_MAX_FORWARDS_STR(mf.c_str()), TAG_END());
  for (int i = 0; i < strip_routes && sip->sip_route != nullptr; ++i) {
    sip_header_remove(msg.get(), sip, reinterpret_cast<sip_header_t*>(sip->sip_route));
  }
  return msg;
}

// Copy of a response to relay upstream: our Via removed.
MsgPtr ResponseToRelay(msg_t* response) {
  MsgPtr copy(msg_copy(response));
  if (!copy) return nullptr;
  sip_t* rsip = sip_object(copy.get());
  if (rsip->sip_via) {
    sip_header_remove(copy.get(), rsip, reinterpret_cast<sip_header_t*>(rsip->sip_via));
  }
  return copy;
}

}  // namespace

struct CallRouter::Call {
  struct BranchTxn {
    CallRouter* router = nullptr;
    uint64_t call_id = 0;
    BranchId id = 0;
    nta_outgoing_t* orq = nullptr;
    MsgPtr final_response;  // the phone's final response (not nta's own 408/503)
    int final_status = 0;
  };
  uint64_t id = 0;
  CallRouter* router = nullptr;
  std::string aor;
  std::string method;
  std::optional<Transport> in_transport;  // the caller's request came in over it
  nta_incoming_t* irq = nullptr;
  MsgPtr request;  // the caller's request
  CallInfo info;
  Fork fork;
  std::map<BranchId, std::unique_ptr<BranchTxn>> branches;
  bool final_sent = false;
  bool finished = false;
  bool free_scheduled = false;
  std::optional<absl::Time> timer_at;
  absl::Time started;

  Call(const ForkPolicy& policy, absl::Time now) : fork(policy, now), started(now) {}
};

struct CallRouter::Relay {
  CallRouter* router = nullptr;
  uint64_t id = 0;
  nta_incoming_t* irq = nullptr;
  nta_outgoing_t* orq = nullptr;
};

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
      alive_(std::make_shared<CallRouter*>(this)) {
  if (!options_.route_secret.empty()) route_codec_.emplace(options_.route_secret);
  if (!options_.record_route.empty()) {
    auto own = ParseUri(options_.record_route);
    if (own.ok()) {
      own_ = *own;
      own_uris_.push_back(*own);
    } else {
      log_->error("record_route \"{}\": {}", options_.record_route, own.status().message());
    }
  }
  if (own_) {
    rr_by_transport_ = options_.record_route_by_transport;
    if (auto t = UriTransport(*own_); t.ok()) rr_by_transport_.emplace(*t, options_.record_route);
    // Transports without a configured URI: our host, the port of the agent's listener.
    std::string host = IsIpv6Literal(own_->host) ? absl::StrCat("[", own_->host, "]") : own_->host;
    for (tport_t* tp = agent_ != nullptr ? tport_primaries(nta_agent_tports(agent_)) : nullptr;
         tp != nullptr; tp = tport_next(tp)) {
      std::optional<Transport> t = TportTransport(tp);
      const su_addrinfo_t* ai = tport_get_address(tp);
      if (!t || ai == nullptr || rr_by_transport_.count(*t) != 0) continue;
      auto hp = SockaddrToHostPort(ai->ai_addr);
      if (!hp) continue;
      rr_by_transport_[*t] = *t == Transport::kTls ? absl::StrCat("sips:", host, ":", hp->second)
                                                   : absl::StrCat("sip:", host, ":", hp->second,
                                                                  ";transport=", TransportName(*t));
    }
    for (const auto& [t, uri] : rr_by_transport_) {
      auto parsed = ParseUri(uri);
      if (parsed.ok()) {
        own_uris_.push_back(*parsed);
      } else {
        log_->error("record-route for {} \"{}\": {}", TransportName(t), uri,
                    parsed.status().message());
      }
    }
  }
  timer_ = su_timer_create(su_root_task(loop_.root()), 0);
  if (timer_ == nullptr) log_->critical("su_timer_create failed: calls will never time out");
  subscription_ = store_.Subscribe(
      [this](const std::string& aor, const Binding& binding) { OnRegistration(aor, binding); });
}

CallRouter::~CallRouter() {
  store_.Unsubscribe(subscription_);
  alive_.reset();
  if (timer_ != nullptr) su_timer_destroy(timer_);
  timer_ = nullptr;
  for (auto& [id, call] : calls_) {
    for (auto& [bid, b] : call->branches) {
      if (b->orq != nullptr) nta_outgoing_destroy(b->orq);
    }
    if (call->irq != nullptr) {
      if (!call->final_sent) nta_incoming_treply(call->irq, SIP_503_SERVICE_UNAVAILABLE, TAG_END());
      nta_incoming_destroy(call->irq);
    }
  }
  calls_.clear();
  for (auto& [id, relay] : relays_) {
    if (relay->orq != nullptr) nta_outgoing_destroy(relay->orq);
    if (relay->irq != nullptr) {
      nta_incoming_treply(relay->irq, SIP_503_SERVICE_UNAVAILABLE, TAG_END());
      nta_incoming_destroy(relay->irq);
    }
  }
  relays_.clear();
  M().Open().Set(0);
}

CallRouter::Call* CallRouter::FindCall(uint64_t id) {
  auto it = calls_.find(id);
  return it == calls_.end() ? nullptr : it->second.get();
}

bool CallRouter::IsOwnUri(const url_t* url) const {
  if (url == nullptr || url->url_host == nullptr) return false;
  bool tls = url->url_type == url_sips;
  uint16_t port = tls ? 5061 : 5060;
  if (url->url_port != nullptr) {
    int p = std::atoi(url->url_port);
    if (p <= 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  }
  std::string host = url->url_host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  host = absl::AsciiStrToLower(host);
  return std::any_of(own_uris_.begin(), own_uris_.end(), [&](const Uri& own) {
    uint16_t own_port = own.port.value_or(own.scheme == "sips" ? 5061 : 5060);
    return own_port == port && absl::AsciiStrToLower(own.host) == host;
  });
}

int CallRouter::OwnRoutes(const sip_t* sip) const {
  if (sip == nullptr || sip->sip_route == nullptr || own_uris_.empty()) return 0;
  const sip_route_t* top = sip->sip_route;
  if (!IsOwnUri(top->r_url)) return 0;
  const sip_route_t* next = top->r_next;
  if (next == nullptr || !IsOwnUri(next->r_url)) return 1;
  // RFC 5658: a pair of ours names two different transports (or interfaces). Two identical
  // entries are a spiral through us: one at a time.
  auto a = ParseUri(UrlString(top->r_url));
  auto b = ParseUri(UrlString(next->r_url));
  if (!a.ok() || !b.ok()) return 1;
  auto ta = UriTransport(*a), tb = UriTransport(*b);
  bool differ = (ta.ok() && tb.ok() && *ta != *tb) || a->host != b->host || a->port != b->port;
  return differ ? 2 : 1;
}

bool CallRouter::IsOurRoute(const sip_t* sip) const { return OwnRoutes(sip) > 0; }

bool CallRouter::NamesPhone(const sip_t* sip) const {
  const sip_route_t* r = sip->sip_route;
  for (int i = 0, own = OwnRoutes(sip); i < own && r != nullptr && flows_; ++i, r = r->r_next) {
    auto route = ParseUri(UrlString(r->r_url));
    std::optional<std::string> token = route.ok() ? Param(*route, kFlowParam) : std::nullopt;
    if (token && !token->empty() && flows_(*token) != nullptr) return true;
  }
  return RoutedPhoneAddress(sip).has_value();
}

std::string CallRouter::PhoneParams(const std::string& flow_token,
                                    const std::optional<TransportInfo>& phone) const {
  if (!flow_token.empty()) return absl::StrCat(";", kFlowParam, "=", flow_token);
  if (!phone || !route_codec_ || phone->host.empty() || phone->port == 0) return "";
  // The masquerade value of the address alone (the URI it sits in is thrown away).
  Contact contact;
  contact.uri.scheme = "sip";
  contact.uri.host = phone->host;
  Uri signed_uri = route_codec_->Masquerade(
      contact, TransportInfo{Transport::kUdp, "gateway.invalid", 5060}, std::nullopt, *phone);
  std::optional<std::string> value = Param(signed_uri, kMasqueradeParam);
  return value ? absl::StrCat(";", kPhoneParam, "=", *value) : "";
}

std::optional<TransportInfo> CallRouter::RoutedPhoneAddress(const sip_t* sip) const {
  if (!route_codec_) return std::nullopt;
  const sip_route_t* r = sip->sip_route;
  for (int i = 0, own = OwnRoutes(sip); i < own && r != nullptr; ++i, r = r->r_next) {
    auto route = ParseUri(UrlString(r->r_url));
    std::optional<std::string> value = route.ok() ? Param(*route, kPhoneParam) : std::nullopt;
    if (!value || value->empty()) continue;
    Uri carrier;
    carrier.scheme = "sip";
    carrier.host = "gateway.invalid";
    SetParam(carrier, kMasqueradeParam, *value);
    auto target = route_codec_->Restore(carrier);
    if (target.ok() && !target->insert_domain) return target->original;
    log_->warn("in-dialog request with a bad phone address in our Route: {}",
               target.ok() ? "no address" : target.status().message());
    return std::nullopt;
  }
  return std::nullopt;
}

std::vector<std::string> CallRouter::RecordRoutesFor(
    std::optional<Transport> in, std::optional<Transport> out, const std::string& flow_token,
    const std::optional<TransportInfo>& phone) const {
  if (options_.record_route.empty()) return {};
  auto uri_for = [&](std::optional<Transport> t) {
    auto it = t ? rr_by_transport_.find(*t) : rr_by_transport_.end();
    return it != rr_by_transport_.end() ? it->second : options_.record_route;
  };
  std::string out_uri = uri_for(out);
  std::string in_uri = uri_for(in);
  std::string top = absl::StrCat(out_uri, PhoneParams(flow_token, phone));
  std::vector<std::string> routes = {top};
  if (in_uri != out_uri) routes.push_back(in_uri);
  return routes;
}

bool CallRouter::PointsAtUs(const Binding& binding) const {
  if (!own_) return false;
  auto same = [&](const std::string& host, std::optional<uint16_t> port) {
    return absl::AsciiStrToLower(host) == absl::AsciiStrToLower(own_->host) &&
           port.value_or(5060) == own_->port.value_or(5060);
  };
  if (binding.flow_token.empty() && !binding.received.host.empty() && binding.received.port != 0) {
    return same(binding.received.host, binding.received.port);
  }
  return same(binding.contact.host, binding.contact.port);
}

bool CallRouter::Reachable(const Binding& binding) {
  if (!binding.flow_token.empty()) return flows_ && flows_(binding.flow_token) != nullptr;
  return true;  // UDP, or a connection nta can open
}

// ---------------------------------------------------------------------------------------------
// Incoming call

void CallRouter::HandleIncoming(nta_incoming_t* irq, const sip_t* sip, const std::string& aor) {
  if (sip->sip_max_forwards != nullptr && sip->sip_max_forwards->mf_count == 0) {
    nta_incoming_treply(irq, SIP_483_TOO_MANY_HOPS, TAG_END());
    nta_incoming_destroy(irq);
    return;
  }
  absl::Time now = clock_.Now();
  auto call = std::make_unique<Call>(options_.fork, now);
  call->id = next_id_++;
  call->router = this;
  call->aor = aor;
  call->irq = irq;
  call->method = sip->sip_request->rq_method_name ? sip->sip_request->rq_method_name : "";
  call->request.reset(nta_incoming_getrequest(irq));
  {
    TportRef in = TportRef::Adopt(nta_incoming_transport(agent_, irq, nullptr));
    if (in) call->in_transport = TportTransport(in.get());
  }
  if (sip->sip_call_id && sip->sip_call_id->i_id) call->info.call_id = sip->sip_call_id->i_id;
  if (sip->sip_from) {
    call->info.caller_uri = UrlString(sip->sip_from->a_url);
    if (sip->sip_from->a_display) {
      std::string d = sip->sip_from->a_display;
      if (d.size() >= 2 && d.front() == '"' && d.back() == '"') d = d.substr(1, d.size() - 2);
      call->info.caller_display_name = d;
    }
  }
  uint64_t id = call->id;
  Call* raw = call.get();
  calls_.emplace(id, std::move(call));
  calls_by_aor_[aor].insert(id);
  M().Open().Set(static_cast<double>(calls_.size()));
  if (sip->sip_request->rq_method == sip_method_invite) {
    nta_incoming_bind(irq, &CallRouter::OnCallerCancelCb,
                      reinterpret_cast<nta_incoming_magic_t*>(raw));
  }
  log_->info("{} call-id={} aor={}: looking up bindings", raw->method, raw->info.call_id, aor);
  std::weak_ptr<CallRouter*> alive = alive_;
  store_.Fetch(aor, now, [alive, id](absl::StatusOr<std::vector<Binding>> bindings) {
    auto self = alive.lock();
    if (!self) return;
    CallRouter* router = *self;
    Call* c = router->FindCall(id);
    if (c == nullptr) return;
    if (!bindings.ok()) {
      router->log_->error("call-id={}: store fetch failed: {}", c->info.call_id,
                          bindings.status().message());
      M().Calls("store_error").Inc();
      router->Respond(*c, 503, "Registrar store unavailable");
      c->finished = true;
      router->MaybeFree(id);
      return;
    }
    router->StartFork(id, std::move(*bindings));
  });
}

void CallRouter::StartFork(uint64_t call_id, std::vector<Binding> bindings) {
  Call* call = FindCall(call_id);
  // The caller may have cancelled while the store was looking the bindings up.
  if (call == nullptr || call->finished) return;
  // Loop prevention (RFC 3261 16.3 step 4 in spirit): a contact that points back at the gateway
  // (a masqueraded contact registered as the phone's own) would send the call to ourselves.
  bindings.erase(std::remove_if(bindings.begin(), bindings.end(),
                                [this](const Binding& b) { return PointsAtUs(b); }),
                 bindings.end());
  std::vector<bool> reachable;
  for (const Binding& b : bindings) reachable.push_back(Reachable(b));
  log_->info("call-id={} aor={}: {} binding(s)", call->info.call_id, call->aor, bindings.size());
  Fork::Actions actions = call->fork.Start(bindings, reachable, clock_.Now());
  Apply(*call, actions);
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
        Respond(call, a.status, a.reason);
        break;
      case Type::kRemoveBinding: {
        const Branch* b = call.fork.branch(a.branch);
        if (b == nullptr) break;
        std::string key = b->binding.push_key();
        log_->info("call-id={}: push token of {} is dead: removing the binding", call.info.call_id,
                   DebugString(b->binding));
        store_.RemoveByPushKey(call.aor, key, clock_.Now(), [log = log_](absl::StatusOr<size_t> n) {
          if (!n.ok()) log->warn("removing a dead push token failed: {}", n.status().message());
        });
        break;
      }
      case Type::kFinished:
        call.finished = true;
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

void CallRouter::SendBranch(Call& call, BranchId branch_id) {
  const Branch* branch = call.fork.branch(branch_id);
  if (branch == nullptr || !call.request) return;
  const Binding& binding = branch->binding;
  MsgPtr msg = CopyForForward(call.request.get(), OwnRoutes(sip_object(call.request.get())));
  if (!msg) return;
  sip_t* sip = sip_object(msg.get());
  std::string ruri = FormatUri(binding.contact);
  sip_request_t* rq = sip_request_create(msg_home(msg.get()), sip->sip_request->rq_method,
                                         sip->sip_request->rq_method_name, UrlStr(ruri), nullptr);
  if (rq == nullptr) {
    log_->warn("call-id={}: bad contact {}", call.info.call_id, DebugString(binding));
    return;
  }
  msg_header_replace(msg.get(), reinterpret_cast<msg_pub_t*>(sip),
                     reinterpret_cast<msg_header_t*>(sip->sip_request),
                     reinterpret_cast<msg_header_t*>(rq));
  // Where to send: over the phone's own connection, else to where its REGISTER came from (NAT),
  // else to the contact.
  tport_t* tp = nullptr;
  std::string route;
  std::optional<Transport> out;
  if (!binding.flow_token.empty() && flows_) tp = flows_(binding.flow_token);
  if (tp != nullptr) {
    out = TportTransport(tp);
  } else if (!binding.received.host.empty() && binding.received.port != 0) {
    std::string host = IsIpv6Literal(binding.received.host)
                           ? absl::StrCat("[", binding.received.host, "]")
                           : binding.received.host;
    route = absl::StrCat("sip:", host, ":", binding.received.port,
                         ";transport=", TransportName(binding.received.transport));
    out = binding.received.transport;
  } else if (auto t = UriTransport(binding.contact); t.ok()) {
    out = *t;
  }
  if (!options_.record_route.empty() && sip->sip_request->rq_method == sip_method_invite) {
    // The phone's flow rides along in our Record-Route, so in-dialog requests toward the phone
    // take its connection again (it may be behind NAT). In over one transport, out over another:
    // two entries (RFC 5658), ours toward the phone on top, ours toward the caller below it.
    // Without a kept connection, the address the phone registered from (NAT) rides along.
    std::optional<TransportInfo> phone;
    if (tp == nullptr && !binding.received.host.empty()) phone = binding.received;
    std::vector<std::string> routes =
        RecordRoutesFor(call.in_transport, out, binding.flow_token, phone);
    for (auto it = routes.rbegin(); it != routes.rend(); ++it) {
      std::string rr = absl::StrCat("<", *it, ";lr>");
      sip_record_route_t* h = sip_record_route_make(msg_home(msg.get()), rr.c_str());
      if (h != nullptr) {
        msg_header_insert(msg.get(), reinterpret_cast<msg_pub_t*>(sip),
                          reinterpret_cast<msg_header_t*>(h));
      }
    }
  }
  auto txn = std::make_unique<Call::BranchTxn>();
  txn->router = this;
  txn->call_id = call.id;
  txn->id = branch_id;
  Call::BranchTxn* raw = txn.get();
  call.branches[branch_id] = std::move(txn);
  nta_outgoing_t* orq = nta_outgoing_mcreate(
      agent_, &CallRouter::OnBranchResponseCb, reinterpret_cast<nta_outgoing_magic_t*>(raw),
      UrlStr(route), msg.get(), TAG_IF(tp != nullptr, NTATAG_TPORT(tp)), TAG_END());
  if (orq == nullptr) {
    log_->warn("call-id={}: cannot send to {}", call.info.call_id, DebugString(binding));
    // Reported as unreachable (503) on the loop, after this action list.
    uint64_t cid = call.id;
    std::weak_ptr<CallRouter*> alive = alive_;
    loop_.Post([alive, cid, branch_id] {
      auto self = alive.lock();
      if (!self) return;
      CallRouter* router = *self;
      Call* c = router->FindCall(cid);
      if (c == nullptr) return;
      router->Apply(*c, c->fork.OnResponse(branch_id, 503, router->clock_.Now()));
    });
    return;
  }
  msg.release();
  M().Branches().Inc();
  if (raw->orq == nullptr && raw->final_status == 0) raw->orq = orq;
  log_->info("call-id={}: branch {} -> {}", call.info.call_id, branch_id, ruri);
}

void CallRouter::CancelBranch(Call& call, BranchId branch_id, const std::string& reason) {
  auto it = call.branches.find(branch_id);
  if (it == call.branches.end() || it->second->orq == nullptr) return;
  if (it->second->final_status >= 200) return;
  nta_outgoing_tcancel(it->second->orq, nullptr, nullptr,
                       TAG_IF(!reason.empty(), SIPTAG_REASON_STR(reason.c_str())), TAG_END());
  log_->info("call-id={}: branch {} cancelled{}", call.info.call_id, branch_id,
             reason.empty() ? "" : " (completed elsewhere)");
}

void CallRouter::SendPush(Call& call, BranchId branch_id, PushKind kind) {
  const Branch* branch = call.fork.branch(branch_id);
  if (branch == nullptr) return;
  uint64_t cid = call.id;
  std::weak_ptr<CallRouter*> alive = alive_;
  if (push_ == nullptr) {
    M().Pushes("no_pusher").Inc();
    log_->warn("call-id={}: no pusher configured, cannot wake {}", call.info.call_id,
               DebugString(branch->binding));
    return;
  }
  absl::Duration ttl =
      std::max(absl::Seconds(1), call.started + options_.fork.call_timeout - clock_.Now());
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
  Fork::PushOutcome outcome = Fork::PushOutcome::kFailed;
  std::string label;
  if (!r.ok()) {
    label = "error";
    log_->warn("push for call {} branch {} failed: {}", call_id, branch, r.status().message());
  } else if (r->outcome() == v1::ACCEPTED) {
    outcome = Fork::PushOutcome::kAccepted;
    label = "accepted";
  } else if (r->outcome() == v1::TOKEN_INVALID) {
    outcome = Fork::PushOutcome::kTokenInvalid;
    label = "token_invalid";
  } else {
    label = "failed";
    log_->warn("push for call {} branch {} not delivered: {} {}", call_id, branch,
               v1::Outcome_Name(r->outcome()), r->reason());
  }
  M().Pushes(label).Inc();
  Call* call = FindCall(call_id);
  if (call == nullptr) {
    // The call is over, but a dead token is still dead.
    if (outcome == Fork::PushOutcome::kTokenInvalid && !push_key.empty()) {
      store_.RemoveByPushKey(aor, push_key, clock_.Now(), [log = log_](absl::StatusOr<size_t> n) {
        if (!n.ok()) log->warn("removing a dead push token failed: {}", n.status().message());
      });
    }
    return;
  }
  Apply(*call, call->fork.OnPushResult(branch, outcome, clock_.Now()));
}

void CallRouter::ForwardResponse(Call& call, BranchId branch_id, int status) {
  if (call.irq == nullptr) return;
  auto it = call.branches.find(branch_id);
  MsgPtr response;
  if (it != call.branches.end()) {
    if (status >= 200 && it->second->final_response) {
      response = ResponseToRelay(it->second->final_response.get());
    } else if (status < 200 && it->second->orq != nullptr) {
      MsgPtr latest(nta_outgoing_getresponse(it->second->orq));
      if (latest) response = ResponseToRelay(latest.get());
    }
  }
  if (status >= 200 && call.final_sent && status >= 300) return;  // one non-2xx final only
  if (!response) {
    // nta's own answer (timeout / unreachable): answer with the status ourselves.
    Respond(call, status == 503 ? 500 : status, status == 408 ? "Request Timeout" : "No answer");
    return;
  }
  if (status >= 200) call.final_sent = true;
  if (nta_incoming_mreply(call.irq, response.release()) < 0) {
    log_->warn("call-id={}: relaying {} failed", call.info.call_id, status);
  }
  if (status >= 200) M().Calls(absl::StrCat(status / 100, "xx")).Inc();
}

void CallRouter::Respond(Call& call, int status, const std::string& reason) {
  if (call.irq == nullptr) return;
  if (status >= 200) {
    if (call.final_sent) return;
    call.final_sent = true;
    M().Calls(absl::StrCat(status)).Inc();
  }
  nta_incoming_treply(call.irq, status, reason.c_str(), TAG_END());
  log_->info("call-id={}: answered {} {}", call.info.call_id, status, reason);
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
  if (txn.orq == nullptr) txn.orq = orq;
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
  if (PointsAtUs(binding)) return;
  auto by_aor = calls_by_aor_.find(aor);
  if (by_aor == calls_by_aor_.end()) return;
  // A copy: Apply may free calls.
  std::vector<uint64_t> ids(by_aor->second.begin(), by_aor->second.end());
  for (uint64_t id : ids) {
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
  if (call.timer_at) wakeups_.erase({*call.timer_at, call.id});
  call.timer_at = at;
  if (at) wakeups_.insert({*at, call.id});
  ArmRouterTimer();
}

// One su timer for every call, armed at the earliest wakeup: per-call timers would pile up in
// the loop (one per call for its 90 s deadline) and wake it for nothing.
void CallRouter::ArmRouterTimer() {
  if (timer_ == nullptr) return;
  if (wakeups_.empty()) {
    if (timer_armed_for_) su_timer_reset(timer_);
    timer_armed_for_.reset();
    return;
  }
  absl::Time earliest = wakeups_.begin()->first;
  if (timer_armed_for_ && *timer_armed_for_ == earliest) return;
  timer_armed_for_ = earliest;
  absl::Duration delay = std::max(absl::ZeroDuration(), earliest - clock_.Now());
  // Rounded up: sofia's timers have millisecond resolution, and an early wakeup only re-arms.
  auto ms = static_cast<su_duration_t>(
      absl::ToInt64Milliseconds(absl::Ceil(delay, absl::Milliseconds(1))) + 1);
  su_timer_set_interval(timer_, &CallRouter::OnRouterTimerCb,
                        reinterpret_cast<su_timer_arg_t*>(this), ms);
}

void CallRouter::OnRouterTimerCb(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) noexcept {
  reinterpret_cast<CallRouter*>(arg)->OnRouterTimer();
}

void CallRouter::OnRouterTimer() {
  timer_armed_for_.reset();
  absl::Time now = clock_.Now();
  std::vector<uint64_t> due;
  while (!wakeups_.empty() && wakeups_.begin()->first <= now) {
    uint64_t id = wakeups_.begin()->second;
    wakeups_.erase(wakeups_.begin());
    if (Call* call = FindCall(id); call != nullptr) call->timer_at.reset();
    due.push_back(id);
  }
  for (uint64_t id : due) {
    Call* call = FindCall(id);
    if (call == nullptr) continue;
    if (call->free_scheduled) {
      FreeCall(id);
    } else {
      OnTimer(id);
    }
  }
  ArmRouterTimer();
}

void CallRouter::OnTimer(uint64_t call_id) {
  Call* call = FindCall(call_id);
  if (call == nullptr || call->finished) return;
  Apply(*call, call->fork.OnTimer(clock_.Now()));
}

void CallRouter::MaybeFree(uint64_t call_id) {
  Call* call = FindCall(call_id);
  if (call == nullptr || call->free_scheduled) return;
  call->free_scheduled = true;
  bool all_final = std::all_of(call->branches.begin(), call->branches.end(),
                               [](const auto& b) { return b.second->final_status >= 200; });
  if (!call->final_sent && call->irq != nullptr) {
    // The fork ended without an answer to the caller (should not happen): never leave it hanging.
    Respond(*call, 500, "Fork ended");
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
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  Call& c = *it->second;
  if (c.timer_at) wakeups_.erase({*c.timer_at, c.id});
  for (auto& [bid, b] : c.branches) {
    if (b->orq != nullptr) nta_outgoing_destroy(b->orq);
    b->orq = nullptr;
  }
  if (c.irq != nullptr) nta_incoming_destroy(c.irq);
  c.irq = nullptr;
  if (auto by_aor = calls_by_aor_.find(c.aor); by_aor != calls_by_aor_.end()) {
    by_aor->second.erase(call_id);
    if (by_aor->second.empty()) calls_by_aor_.erase(by_aor);
  }
  calls_.erase(it);
  M().Open().Set(static_cast<double>(calls_.size()));
}

// ---------------------------------------------------------------------------------------------
// In-dialog requests

void CallRouter::HandleInDialog(nta_incoming_t* irq, const sip_t* sip) {
  if (sip->sip_max_forwards != nullptr && sip->sip_max_forwards->mf_count == 0 &&
      sip->sip_request->rq_method != sip_method_ack) {
    nta_incoming_treply(irq, SIP_483_TOO_MANY_HOPS, TAG_END());
    nta_incoming_destroy(irq);
    return;
  }
  MsgPtr original(nta_incoming_getrequest(irq));
  const int own_routes = OwnRoutes(sip);
  MsgPtr msg = original ? CopyForForward(original.get(), own_routes) : nullptr;
  if (!msg) {
    nta_incoming_treply(irq, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
    nta_incoming_destroy(irq);
    return;
  }
  // Toward the phone over its own connection when our Route names its flow and the request did
  // not come in over that very connection (then it goes the other way, to the caller).
  // With double record-routing the flow is named by the phone-side entry of the pair: either.
  tport_t* flow = nullptr;
  const sip_route_t* r = sip->sip_route;
  for (int i = 0; i < own_routes && r != nullptr && flows_ && flow == nullptr; ++i, r = r->r_next) {
    auto route = ParseUri(UrlString(r->r_url));
    std::optional<std::string> token = route.ok() ? Param(*route, kFlowParam) : std::nullopt;
    if (token && !token->empty()) {
      flow = flows_(*token);
      TportRef in = TportRef::Adopt(nta_incoming_transport(agent_, irq, nullptr));
      if (flow != nullptr && in && in.get() == flow) flow = nullptr;
      break;
    }
  }
  sip_t* fwd = sip_object(msg.get());
  // Loose routing: the next Route, else the request URI.
  std::string target = fwd->sip_route != nullptr ? UrlString(fwd->sip_route->r_url)
                                                 : UrlString(fwd->sip_request->rq_url);
  if (flow == nullptr) {
    // A phone without a kept connection: to the address its REGISTER came from (its contact may
    // be a private address behind NAT), unless the request comes from there.
    if (std::optional<TransportInfo> phone = RoutedPhoneAddress(sip)) {
      TportRef in = TportRef::Adopt(nta_incoming_transport(agent_, irq, nullptr));
      std::optional<TransportInfo> source = SourceOf(original.get(), in.get());
      bool from_phone = source && source->port == phone->port &&
                        absl::EqualsIgnoreCase(source->host, phone->host);
      if (!from_phone) {
        std::string host =
            IsIpv6Literal(phone->host) ? absl::StrCat("[", phone->host, "]") : phone->host;
        target = absl::StrCat(phone->transport == Transport::kTls ? "sips:" : "sip:", host, ":",
                              phone->port, ";transport=", TransportName(phone->transport));
      }
    }
  }
  if (sip->sip_request->rq_method == sip_method_ack) {
    nta_msg_tsend(agent_, msg.release(), UrlStr(target),
                  TAG_IF(flow != nullptr, NTATAG_TPORT(flow)), TAG_END());
    nta_incoming_destroy(irq);
    return;
  }
  auto relay = std::make_unique<Relay>();
  relay->router = this;
  relay->id = next_id_++;
  relay->irq = irq;
  Relay* raw = relay.get();
  uint64_t id = relay->id;
  relays_.emplace(id, std::move(relay));
  if (sip->sip_request->rq_method == sip_method_invite) {
    // A re-INVITE the sender CANCELs: CANCEL the relayed one too (held by nta until its
    // provisional response, RFC 3261 9.1).
    nta_incoming_bind(irq, &CallRouter::OnRelayCancelCb,
                      reinterpret_cast<nta_incoming_magic_t*>(raw));
  }
  nta_outgoing_t* orq = nta_outgoing_mcreate(
      agent_, &CallRouter::OnRelayResponseCb, reinterpret_cast<nta_outgoing_magic_t*>(raw),
      UrlStr(target), msg.get(), TAG_IF(flow != nullptr, NTATAG_TPORT(flow)), TAG_END());
  if (orq == nullptr) {
    auto it = relays_.find(id);
    if (it != relays_.end()) {
      nta_incoming_treply(irq, 503, "Next hop unreachable", TAG_END());
      nta_incoming_destroy(irq);
      relays_.erase(it);
    }
    return;
  }
  msg.release();
  auto it = relays_.find(id);
  if (it != relays_.end() && it->second->orq == nullptr) it->second->orq = orq;
}

int CallRouter::OnRelayCancelCb(nta_incoming_magic_t* magic, nta_incoming_t* irq,
                                const sip_t* sip) noexcept {
  auto* relay = reinterpret_cast<Relay*>(magic);
  if (sip != nullptr && sip->sip_request != nullptr &&
      sip->sip_request->rq_method == sip_method_cancel && relay->orq != nullptr) {
    nta_outgoing_tcancel(relay->orq, nullptr, nullptr, TAG_END());
  }
  return 0;
}

int CallRouter::OnRelayResponseCb(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                  const sip_t* sip) noexcept {
  auto* relay = reinterpret_cast<Relay*>(magic);
  CallRouter* router = relay->router;
  uint64_t id = relay->id;
  int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
  bool internal = sip == nullptr || nta_sip_is_internal(sip);
  if (status <= 100) return 0;
  MsgPtr response;
  if (!internal) {
    MsgPtr r(nta_outgoing_getresponse(orq));
    if (r) response = ResponseToRelay(r.get());
  }
  if (relay->irq != nullptr) {
    if (response) {
      nta_incoming_mreply(relay->irq, response.release());
    } else {
      nta_incoming_treply(relay->irq, status, status == 408 ? "Request Timeout" : "Unreachable",
                          TAG_END());
    }
  }
  if (status >= 200) {
    router->loop_.Post([alive = std::weak_ptr<CallRouter*>(router->alive_), id] {
      auto self = alive.lock();
      if (!self) return;
      auto it = (*self)->relays_.find(id);
      if (it == (*self)->relays_.end()) return;
      if (it->second->orq != nullptr) nta_outgoing_destroy(it->second->orq);
      if (it->second->irq != nullptr) nta_incoming_destroy(it->second->irq);
      (*self)->relays_.erase(it);
    });
  }
  return 0;
}

}  // namespace pushgate::proxy::sofia
