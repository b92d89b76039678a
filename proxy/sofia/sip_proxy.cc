#include "proxy/sofia/sip_proxy.h"

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
#include <sofia-sip/tport_tag.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "proxy/core/binding.h"
#include "proxy/core/contact.h"
#include "proxy/core/domain_policy.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/pending_registers.h"
#include "proxy/core/push_params.h"
#include "proxy/core/sip_uri.h"
#include "proxy/sofia/flow_table.h"
#include "proxy/sofia/sofia_util.h"

namespace pushgate::proxy::sofia {
namespace {

constexpr unsigned kUdpReceiveBuffer = 4u << 20;

const url_string_t* UrlStr(const std::string& s) {
  return s.empty() ? nullptr : reinterpret_cast<const url_string_t*>(s.c_str());
}

std::string ListenUrl(const TransportInfo& l) {
  std::string host = IsIpv6Literal(l.host) ? absl::StrCat("[", l.host, "]") : l.host;
  std::string port = l.port == 0 ? "*" : absl::StrCat(l.port);
  if (l.transport == Transport::kTls) return absl::StrCat("sips:", host, ":", port);
  return absl::StrCat("sip:", host, ":", port, ";transport=", TransportName(l.transport));
}

std::string StatusClass(int status) { return absl::StrCat(status / 100, "xx"); }

// Metric label for a method: the usual ones by name, anything else "other" (bounded cardinality).
std::string MethodLabel(absl::string_view method) {
  static const char* kKnown[] = {"REGISTER", "INVITE",  "ACK",    "BYE",       "CANCEL",
                                 "OPTIONS",  "MESSAGE", "NOTIFY", "SUBSCRIBE", "INFO",
                                 "UPDATE",   "PRACK",   "REFER",  "PUBLISH"};
  for (const char* m : kKnown) {
    if (method == m) return m;
  }
  return "other";
}

// The proxy's metrics. Handles are looked up once per label value and cached (loop thread only),
// so the hot path never takes the registry's lock.
class Metrics {
 public:
  metrics::Counter& Registrations(const std::string& result) {
    return Cached(registrations_, result, [&] {
      return &r_.GetCounter("pushgate_proxy_registrations_total",
                            "REGISTER requests handled, by result.", {{"result", result}});
    });
  }
  metrics::Counter& Forwarded(const std::string& method) {
    std::string label = MethodLabel(method);
    return Cached(forwarded_, label, [&] {
      return &r_.GetCounter("pushgate_proxy_forwarded_requests_total",
                            "Requests forwarded to the backend, by method.", {{"method", label}});
    });
  }
  metrics::Counter& Responses(int status) {
    std::string label = StatusClass(status);
    return Cached(responses_, label, [&] {
      return &r_.GetCounter("pushgate_proxy_responses_total",
                            "Final responses sent to clients, by status class.",
                            {{"class", label}});
    });
  }
  metrics::Counter& Rejected(const std::string& reason) {
    return Cached(rejected_, reason, [&] {
      return &r_.GetCounter("pushgate_proxy_rejected_requests_total",
                            "Non-REGISTER requests refused, by reason.", {{"reason", reason}});
    });
  }
  metrics::Gauge& InFlight() { return in_flight_; }

 private:
  template <typename Make>
  static metrics::Counter& Cached(absl::flat_hash_map<std::string, metrics::Counter*>& cache,
                                  const std::string& key, Make make) {
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, make()).first;
    return *it->second;
  }

  metrics::Registry& r_ = metrics::Registry::Default();
  absl::flat_hash_map<std::string, metrics::Counter*> registrations_;
  absl::flat_hash_map<std::string, metrics::Counter*> forwarded_;
  absl::flat_hash_map<std::string, metrics::Counter*> responses_;
  absl::flat_hash_map<std::string, metrics::Counter*> rejected_;
  metrics::Gauge& in_flight_ =
      r_.GetGauge("pushgate_proxy_transactions_in_flight",
                  "Proxied transactions waiting for the backend or the store.");
};

}  // namespace

class SipProxy::Impl {
 public:
  Impl(SofiaLoop& loop, SipProxyOptions options, BindingStore& store, const Clock& clock)
      : loop_(loop),
        options_(std::move(options)),
        store_(store),
        clock_(clock),
        domains_(options_.domains),
        codec_(options_.masquerade_secret),
        pending_(options_.max_pending_registers),
        flows_(absl::StrCat("f", MasqueradeCodec::GenerateSecret().substr(0, 8))),
        log_(log::Get("proxy.sofia")) {}

  absl::Status Init();  // loop thread
  void Shutdown();      // loop thread

  std::vector<TransportInfo> Listening() const {
    std::lock_guard<std::mutex> lock(mu_);
    return listening_;
  }
  // The advertised address for transport `t`, of the IP family of the peer when one matches.
  absl::StatusOr<TransportInfo> Advertised(Transport t, bool ipv6 = false) const {
    std::lock_guard<std::mutex> lock(mu_);
    const TransportInfo* any = nullptr;
    for (const TransportInfo& a : advertised_) {
      if (a.transport != t) continue;
      if (IsIpv6Literal(a.host) == ipv6) return a;
      if (any == nullptr) any = &a;
    }
    if (any != nullptr) return *any;
    return absl::NotFoundError(absl::StrCat("no listener for transport ", TransportName(t)));
  }
  size_t InFlight() const { return in_flight_.load(); }
  void SetDraining() { draining_ = true; }
  // Loop thread.
  void SetCallHandler(
      const std::function<std::unique_ptr<CallHandler>(nta_agent_t*, FlowLookup)>& make) {
    if (shut_down_ || !agent_) return;
    call_handler_ = make(agent_.get(), [this](const std::string& token) {
      return flows_.Lookup(token, clock_.Now());
    });
  }
  SofiaLoop& loop() { return loop_; }

 private:
  enum class Kind { kRegister, kRelay };

  // One proxied transaction: the phone's server transaction and ours toward the backend.
  struct Txn {
    uint64_t id = 0;
    Kind kind = Kind::kRelay;
    Impl* impl = nullptr;
    nta_incoming_t* irq = nullptr;
    nta_outgoing_t* orq = nullptr;
    std::string method;
    // REGISTER only.
    RegisterCheck check;
    std::vector<std::string> masquerade_values;  // the pgw value sent for each contact
    std::string pns_provider;                    // for Feature-Caps, "" when no push params
    MsgPtr response;                             // the backend's final response being relayed
  };

  // C trampolines.
  static int OnRequestCb(nta_leg_magic_t* magic, nta_leg_t* leg, nta_incoming_t* irq,
                         const sip_t* sip) noexcept {
    return reinterpret_cast<Impl*>(magic)->OnRequest(irq, sip);
  }
  static int OnMessageCb(nta_agent_magic_t* magic, nta_agent_t* agent, msg_t* msg,
                         sip_t* sip) noexcept {
    // Stray responses and messages outside transactions: nothing to relay them to.
    nta_msg_discard(agent, msg);
    return 0;
  }
  static int OnResponseCb(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                          const sip_t* sip) noexcept {
    auto* txn = reinterpret_cast<Txn*>(magic);
    return txn->impl->OnResponse(txn->id, orq, sip);
  }
  static int OnCancelCb(nta_incoming_magic_t* magic, nta_incoming_t* irq,
                        const sip_t* sip) noexcept {
    auto* txn = reinterpret_cast<Txn*>(magic);
    if (txn->orq != nullptr && sip != nullptr && sip->sip_request != nullptr &&
        sip->sip_request->rq_method == sip_method_cancel) {
      nta_outgoing_cancel(txn->orq);
    }
    return 0;
  }

  int OnRequest(nta_incoming_t* irq, const sip_t* sip);
  void HandleRegister(nta_incoming_t* irq, const sip_t* sip);
  void HandleOther(nta_incoming_t* irq, const sip_t* sip);
  int OnResponse(uint64_t id, nta_outgoing_t* orq, const sip_t* sip);
  void OnRegisterFinal(Txn& txn, int status, const sip_t* sip);
  // Binds the registration once the backend said 2xx (and answers the phone), one AOR at a
  // time: FinishRegister queues behind a registration of the same AOR still in the store.
  void FinishRegister(uint64_t id, RegisterRequest request, std::vector<absl::Duration> granted);
  void UpdateBindings(uint64_t id, RegisterRequest request, std::vector<absl::Duration> granted);
  void NextTurn(const std::string& aor);
  void AnswerRegistration(uint64_t id, const std::string& aor,
                          const std::vector<std::string>& answer, const absl::Status& st);

  // Replies on a server transaction we do not proxy, and releases it.
  void Reply(nta_incoming_t* irq, int status, const std::string& phrase,
             const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Replies on a proxied transaction and forgets it.
  void ReplyTxn(uint64_t id, int status, const std::string& phrase,
                const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Sends `msg` (a relayed response) to the phone and forgets the transaction.
  void RelayAndFinish(uint64_t id, MsgPtr msg);
  void Finish(uint64_t id);
  Txn* FindTxn(uint64_t id) {
    auto it = txns_.find(id);
    return it == txns_.end() ? nullptr : it->second.get();
  }

  // A copy of the request, ready to forward: Max-Forwards decremented, our own Route removed.
  MsgPtr PrepareForward(nta_incoming_t* irq);
  bool IsLocal(const url_t* url) const;
  bool FromTrustedBackend(const std::optional<TransportInfo>& source) const;
  // Whether an in-dialog request routed by our Record-Route may be relayed (see CallHandler).
  bool InDialogAllowed(nta_incoming_t* irq, const sip_t* sip);
  // Transport toward the backend for `request_uri` (configured backend, else the request URI).
  Transport BackendTransport(const Uri& request_uri) const;
  void SweepTimer();
  static void OnSweepTimer(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) noexcept {
    reinterpret_cast<Impl*>(arg)->SweepTimer();
  }
  void UpdateInFlight() {
    in_flight_.store(txns_.size());
    metrics_.InFlight().Set(static_cast<double>(txns_.size()));
  }

  SofiaLoop& loop_;
  SipProxyOptions options_;
  BindingStore& store_;
  const Clock& clock_;
  DomainPolicy domains_;
  MasqueradeCodec codec_;
  PendingRegisters pending_;
  FlowTable flows_;
  std::shared_ptr<spdlog::logger> log_;
  Metrics metrics_;
  std::optional<Uri> backend_;

  HomePtr home_;
  AgentPtr agent_;
  LegPtr leg_;
  std::map<uint64_t, std::unique_ptr<Txn>> txns_;
  // AORs with a registration between store Fetch and Replace, and who waits for each.
  absl::flat_hash_map<std::string, std::deque<std::function<void()>>> aor_turns_;
  uint64_t next_id_ = 1;
  std::atomic<size_t> in_flight_{0};
  std::atomic<bool> draining_{false};
  bool shut_down_ = false;
  std::unique_ptr<CallHandler> call_handler_;
  su_timer_t* sweep_timer_ = nullptr;  // every second: pending REGISTERs and flows

  mutable std::mutex mu_;
  std::vector<TransportInfo> listening_;   // guarded by mu_
  std::vector<TransportInfo> advertised_;  // guarded by mu_
};

absl::Status SipProxy::Impl::Init() {
  if (options_.masquerade_secret.empty()) {
    return absl::InvalidArgumentError("masquerade secret is empty");
  }
  if (!options_.backend_uri.empty()) {
    auto uri = ParseUri(options_.backend_uri);
    if (!uri.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("backend URI \"", options_.backend_uri, "\": ", uri.status().message()));
    }
    RETURN_IF_ERROR(UriTransport(*uri).status());
    backend_ = *uri;
  }
  home_ = NewHome();
  unsigned t1 = static_cast<unsigned>(absl::ToInt64Milliseconds(options_.t1));
  unsigned t1x64 = static_cast<unsigned>(absl::ToInt64Milliseconds(options_.transaction_timeout));
  agent_.reset(nta_agent_create(loop_.root(), reinterpret_cast<const url_string_t*>(-1),
                                &Impl::OnMessageCb, reinterpret_cast<nta_agent_magic_t*>(this),
                                NTATAG_UA(0), NTATAG_SIP_T1(t1), NTATAG_SIP_T1X64(t1x64),
                                NTATAG_SERVER_RPORT(1), NTATAG_CLIENT_RPORT(1), NTATAG_TCP_RPORT(1),
                                NTATAG_TLS_RPORT(1), NTATAG_EXTRA_100(0), NTATAG_CANCEL_487(0),
                                NTATAG_PASS_408(1), TAG_END()));
  if (!agent_) return absl::InternalError("nta_agent_create failed");

  // nta sends a request through the first listener of the transport, whatever its IP family:
  // with an IPv6 backend, the IPv6 listeners go first.
  std::vector<TransportInfo> listen = options_.listen;
  if (backend_ && IsIpv6Literal(backend_->host)) {
    std::stable_partition(listen.begin(), listen.end(),
                          [](const TransportInfo& l) { return IsIpv6Literal(l.host); });
  }
  for (const TransportInfo& l : listen) {
    std::string url = ListenUrl(l);
    int rc;
    if (l.transport == Transport::kTls) {
      if (options_.tls_certificate_dir.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("listener ", DebugString(l), " needs a TLS certificate directory"));
      }
      rc = nta_agent_add_tport(agent_.get(), UrlStr(url),
                               TPTAG_CERTIFICATE(options_.tls_certificate_dir.c_str()), TAG_END());
    } else {
      // A large UDP receive buffer rides out short stalls of the loop thread under load (the
      // kernel default, ~200 KiB, is ~8 ms of REGISTERs at 11,000/s: bench/register saw drops).
      // The kernel caps it at net.core.rmem_max.
      rc = nta_agent_add_tport(agent_.get(), UrlStr(url), TPTAG_UDP_RMEM(kUdpReceiveBuffer),
                               TAG_END());
    }
    if (rc < 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", DebugString(l), " (", url,
                                                 "): ", std::strerror(errno)));
    }
  }

  std::vector<TransportInfo> listening;
  for (tport_t* tp = tport_primaries(nta_agent_tports(agent_.get())); tp != nullptr;
       tp = tport_next(tp)) {
    std::optional<Transport> transport = TportTransport(tp);
    const su_addrinfo_t* ai = tport_get_address(tp);
    if (!transport || ai == nullptr) continue;
    auto hp = SockaddrToHostPort(ai->ai_addr);
    if (!hp) continue;
    listening.push_back(TransportInfo{*transport, hp->first, hp->second});
  }
  // One advertised address per transport and IP family of the listeners.
  std::vector<TransportInfo> advertised;
  for (const TransportInfo& l : listening) {
    bool v6 = IsIpv6Literal(l.host);
    auto same_kind = [&](const TransportInfo& a) {
      return a.transport == l.transport && IsIpv6Literal(a.host) == v6;
    };
    auto configured = std::find_if(options_.advertise.begin(), options_.advertise.end(), same_kind);
    if (configured == options_.advertise.end()) {
      // A configured host name (not an IP literal) serves both families.
      configured = std::find_if(options_.advertise.begin(), options_.advertise.end(),
                                [&](const TransportInfo& a) { return a.transport == l.transport; });
    }
    TransportInfo a = l;
    if (configured != options_.advertise.end()) {
      a = *configured;
    } else if (a.host == "0.0.0.0" || a.host == "::") {
      // A wildcard listener: advertise the address sofia puts in its Via for this transport.
      for (const sip_via_t* v = nta_agent_via(agent_.get()); v != nullptr; v = v->v_next) {
        absl::string_view proto = v->v_protocol ? v->v_protocol : "";
        if (absl::EqualsIgnoreCase(proto.substr(proto.rfind('/') + 1),
                                   TransportName(l.transport)) &&
            v->v_host != nullptr && IsIpv6Literal(v->v_host) == v6) {
          a.host = v->v_host;
          if (!a.host.empty() && a.host.front() == '[')
            a.host = a.host.substr(1, a.host.size() - 2);
          break;
        }
      }
    }
    if (std::none_of(advertised.begin(), advertised.end(), [&](const TransportInfo& b) {
          return b.transport == a.transport && IsIpv6Literal(b.host) == v6;
        })) {
      advertised.push_back(a);
    }
  }
  for (const TransportInfo& a : options_.advertise) {
    if (std::none_of(listening.begin(), listening.end(),
                     [&](const TransportInfo& l) { return l.transport == a.transport; })) {
      return absl::InvalidArgumentError(
          absl::StrCat("advertised address ", DebugString(a), " has no listener of its transport"));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    listening_ = listening;
    advertised_ = advertised;
  }
  for (const TransportInfo& l : listening) log_->info("listening on {}", DebugString(l));
  for (const TransportInfo& a : advertised) log_->info("advertising {}", DebugString(a));
  if (backend_) {
    log_->info("backend {}", options_.backend_uri);
    // Requests the backend sends us come from its address: trust it when it is an IP literal
    // (with its port for UDP, where the backend sends from its listening port).
    bool ip_literal = IsIpv6Literal(backend_->host) ||
                      std::all_of(backend_->host.begin(), backend_->host.end(),
                                  [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
    if (ip_literal) {
      auto t = UriTransport(*backend_);
      if (t.ok() && *t == Transport::kUdp) {
        std::string host =
            IsIpv6Literal(backend_->host) ? absl::StrCat("[", backend_->host, "]") : backend_->host;
        options_.trusted_backends.push_back(absl::StrCat(host, ":", backend_->port.value_or(5060)));
      } else {
        options_.trusted_backends.push_back(backend_->host);
      }
    }
  } else {
    log_->info("backend: RFC 3263 resolution of the request URI");
  }

  leg_.reset(nta_leg_tcreate(agent_.get(), &Impl::OnRequestCb,
                             reinterpret_cast<nta_leg_magic_t*>(this), NTATAG_NO_DIALOG(1),
                             TAG_END()));
  if (!leg_) return absl::InternalError("nta_leg_tcreate (default leg) failed");
  sweep_timer_ = su_timer_create(su_root_task(loop_.root()), 1000);
  if (sweep_timer_ == nullptr) return absl::InternalError("su_timer_create failed");
  su_timer_run(sweep_timer_, &Impl::OnSweepTimer, reinterpret_cast<su_timer_arg_t*>(this));
  return absl::OkStatus();
}

void SipProxy::Impl::SweepTimer() {
  if (shut_down_) return;
  absl::Time now = clock_.Now();
  for (auto& [id, request] : pending_.Sweep(now)) {
    (void)request;
    log_->warn("pending REGISTER {} expired without a backend answer", id);
  }
  flows_.Sweep(now);
}

void SipProxy::Impl::Shutdown() {
  shut_down_ = true;
  call_handler_.reset();  // before the agent it uses
  if (sweep_timer_ != nullptr) su_timer_destroy(sweep_timer_);
  sweep_timer_ = nullptr;
  for (auto& [id, txn] : txns_) {
    if (txn->orq) nta_outgoing_destroy(txn->orq);
    if (txn->irq) {
      nta_incoming_treply(txn->irq, SIP_503_SERVICE_UNAVAILABLE, TAG_END());
      nta_incoming_destroy(txn->irq);
    }
  }
  txns_.clear();
  UpdateInFlight();
  leg_.reset();
  flows_ = FlowTable("closed");
  agent_.reset();
  home_.reset();
}

bool SipProxy::Impl::FromTrustedBackend(const std::optional<TransportInfo>& source) const {
  if (!source) return false;
  std::string host =
      IsIpv6Literal(source->host) ? absl::StrCat("[", source->host, "]") : source->host;
  std::string with_port = absl::StrCat(host, ":", source->port);
  return std::any_of(options_.trusted_backends.begin(), options_.trusted_backends.end(),
                     [&](const std::string& entry) {
                       return entry == source->host || entry == host || entry == with_port;
                     });
}

bool SipProxy::Impl::InDialogAllowed(nta_incoming_t* irq, const sip_t* sip) {
  MsgPtr request(nta_incoming_getrequest(irq));
  TportRef tport = TportRef::Adopt(nta_incoming_transport(agent_.get(), irq, nullptr));
  if (FromTrustedBackend(SourceOf(request.get(), tport.get()))) return true;
  if (call_handler_->NamesPhone(sip)) return true;  // to the phone, or from it
  // Anything else goes on only toward the backend: the next Route after ours, else the
  // request URI.
  const sip_route_t* r = sip->sip_route;
  for (int i = call_handler_->OwnRoutes(sip); i > 0 && r != nullptr; --i) r = r->r_next;
  auto next = ParseUri(UrlString(r != nullptr ? r->r_url : sip->sip_request->rq_url));
  if (!next.ok()) return false;
  const uint16_t port = next->port.value_or(next->scheme == "sips" ? 5061 : 5060);
  if (backend_ && absl::EqualsIgnoreCase(next->host, backend_->host) &&
      port == backend_->port.value_or(backend_->scheme == "sips" ? 5061 : 5060)) {
    return true;
  }
  // The backend's own Record-Route may name it by address: the trusted backends list.
  TransportInfo hop;
  hop.host = next->host;
  hop.port = port;
  if (FromTrustedBackend(hop)) return true;
  return !backend_ && !domains_.allow_all() && domains_.Allowed(next->host);
}

Transport SipProxy::Impl::BackendTransport(const Uri& request_uri) const {
  const Uri& target = backend_ ? *backend_ : request_uri;
  auto t = UriTransport(target);
  return t.ok() ? *t : Transport::kUdp;
}

bool SipProxy::Impl::IsLocal(const url_t* url) const {
  if (url == nullptr || url->url_host == nullptr) return false;
  std::string host = url->url_host;
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  uint32_t port = 0;
  if (url->url_port == nullptr || !absl::SimpleAtoi(url->url_port, &port)) port = 0;
  std::lock_guard<std::mutex> lock(mu_);
  auto matches = [&](const TransportInfo& a) {
    return absl::EqualsIgnoreCase(a.host, host) &&
           (port == 0 ? (a.port == 5060 || a.port == 5061) : a.port == port);
  };
  return std::any_of(listening_.begin(), listening_.end(), matches) ||
         std::any_of(advertised_.begin(), advertised_.end(), matches);
}

void SipProxy::Impl::Reply(nta_incoming_t* irq, int status, const std::string& phrase,
                           const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string extra;
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&extra, extra.empty() ? "" : "\r\n", name, ": ", value);
  }
  nta_incoming_treply(irq, status, phrase.c_str(),
                      TAG_IF(!extra.empty(), SIPTAG_HEADER_STR(extra.c_str())), TAG_END());
  nta_incoming_destroy(irq);
  metrics_.Responses(status).Inc();
}

int SipProxy::Impl::OnRequest(nta_incoming_t* irq, const sip_t* sip) {
  if (sip == nullptr || sip->sip_request == nullptr) {
    Reply(irq, SIP_400_BAD_REQUEST);
    return 0;
  }
  sip_method_t method = sip->sip_request->rq_method;
  if (call_handler_ && call_handler_->IsOurRoute(sip)) {
    if (!InDialogAllowed(irq, sip)) {
      // Anyone can put our Record-Route in a Route header: without this check we would relay
      // any request to any host.
      metrics_.Rejected("relay_denied").Inc();
      if (method == sip_method_ack) {
        nta_incoming_destroy(irq);
      } else {
        Reply(irq, 403, "Relaying denied");
      }
      return 0;
    }
    call_handler_->HandleInDialog(irq, sip);
    return 0;
  }
  if (method == sip_method_ack) {
    // ACK of a 2xx relayed earlier: stateless, end to end; forward it like its INVITE was (a
    // phone's only: the backend's own ACKs have nowhere to go yet).
    MsgPtr request(nta_incoming_getrequest(irq));
    TportRef tport = TportRef::Adopt(nta_incoming_transport(agent_.get(), irq, nullptr));
    if (backend_ && !FromTrustedBackend(SourceOf(request.get(), tport.get()))) {
      MsgPtr msg = PrepareForward(irq);
      if (msg) nta_msg_tsend(agent_.get(), msg.release(), UrlStr(options_.backend_uri), TAG_END());
    }
    nta_incoming_destroy(irq);
    return 0;
  }
  if (sip->sip_max_forwards != nullptr && sip->sip_max_forwards->mf_count == 0) {
    Reply(irq, SIP_483_TOO_MANY_HOPS);
    return 0;
  }
  if (draining_) {
    Reply(irq, SIP_503_SERVICE_UNAVAILABLE, {{"Retry-After", "5"}});
    return 0;
  }
  if (method == sip_method_register) {
    HandleRegister(irq, sip);
  } else {
    HandleOther(irq, sip);
  }
  return 0;
}

MsgPtr SipProxy::Impl::PrepareForward(nta_incoming_t* irq) {
  MsgPtr original(nta_incoming_getrequest(irq));
  if (!original) return nullptr;
  MsgPtr msg(msg_copy(original.get()));
  if (!msg) return nullptr;
  sip_t* sip = sip_object(msg.get());
  unsigned long hops = sip->sip_max_forwards ? sip->sip_max_forwards->mf_count : 70;
  if (hops > 70) hops = 70;
  std::string mf = absl::StrCat(hops == 0 ? 0 : hops - 1);
  sip_add_tl(msg.get(), sip, SIPTAG_MAX_FORWARDS_STR(mf.c_str()), TAG_END());
  // The phone may use us as its outbound proxy: our own Route entry stops here.
  if (sip->sip_route != nullptr && IsLocal(sip->sip_route->r_url)) {
    sip_header_remove(msg.get(), sip, reinterpret_cast<sip_header_t*>(sip->sip_route));
  }
  return msg;
}

void SipProxy::Impl::HandleRegister(nta_incoming_t* irq, const sip_t* sip) {
  MsgPtr request_msg(nta_incoming_getrequest(irq));
  TportRef tport = TportRef::Adopt(nta_incoming_transport(agent_.get(), irq, nullptr));
  std::optional<TransportInfo> source = SourceOf(request_msg.get(), tport.get());

  auto request_uri = ParseUri(UrlString(sip->sip_request->rq_url));
  if (!request_uri.ok()) {
    metrics_.Registrations("bad_request").Inc();
    Reply(irq, 400, std::string(request_uri.status().message()));
    return;
  }
  if (sip->sip_to == nullptr) {
    metrics_.Registrations("bad_request").Inc();
    Reply(irq, 400, "Missing To header");
    return;
  }
  auto to_uri = ParseUri(UrlString(sip->sip_to->a_url));
  if (!to_uri.ok()) {
    metrics_.Registrations("bad_request").Inc();
    Reply(irq, 400, absl::StrCat("To: ", to_uri.status().message()));
    return;
  }
  if (!domains_.Allowed(to_uri->host)) {
    metrics_.Registrations("domain_refused").Inc();
    log_->info("REGISTER refused: domain not served aor={}", AorKey(*to_uri));
    Reply(irq, 403, "Domain not served");
    return;
  }

  RegisterRequest request;
  request.aor = AorKey(*to_uri);
  const std::string aor = request.aor;
  for (const std::string& value : ContactValues(sip)) {
    absl::Status st = AppendContacts(value, request.contacts);
    if (!st.ok()) {
      metrics_.Registrations("bad_request").Inc();
      log_->info("REGISTER refused: aor={} {}", request.aor, st.message());
      Reply(irq, 400, std::string(st.message()));
      return;
    }
  }
  if (sip->sip_error != nullptr) {
    // Sofia could not parse a header; a Contact among them makes the request unusable.
    for (const sip_error_t* e = sip->sip_error; e != nullptr; e = e->er_next) {
      absl::string_view name = e->er_name ? e->er_name : "";
      if (absl::StartsWithIgnoreCase(name, "contact") || absl::StartsWithIgnoreCase(name, "m:") ||
          absl::EqualsIgnoreCase(name, "m")) {
        metrics_.Registrations("bad_request").Inc();
        Reply(irq, 400, "Contact: malformed header");
        return;
      }
    }
  }
  if (sip->sip_expires != nullptr) request.expires_header = sip->sip_expires->ex_delta;
  request.call_id = sip->sip_call_id && sip->sip_call_id->i_id ? sip->sip_call_id->i_id : "";
  request.cseq = sip->sip_cseq ? sip->sip_cseq->cs_seq : 0;
  if (source) request.source = *source;

  RegisterCheck check = CheckRegister(request, options_.registrar);
  if (!check.ok()) {
    const SipError& e = *check.error;
    metrics_.Registrations(e.status == 423 ? "interval_too_brief" : "rejected").Inc();
    log_->info("REGISTER refused: aor={} status={} reason=\"{}\"", request.aor, e.status, e.reason);
    Reply(irq, e.status, e.reason, e.headers);
    return;
  }
  absl::Time now = clock_.Now();
  if (tport && tport_is_reliable(tport.get())) {
    absl::Duration longest = options_.transaction_timeout;
    for (absl::Duration d : check.expiries) longest = std::max(longest, d);
    request.flow_token = flows_.Register(tport.get(), now + longest + absl::Seconds(30));
  }

  MsgPtr msg = PrepareForward(irq);
  if (!msg) {
    Reply(irq, SIP_500_INTERNAL_SERVER_ERROR);
    return;
  }
  sip_t* fsip = sip_object(msg.get());

  auto txn = std::make_unique<Txn>();
  txn->id = next_id_++;
  txn->kind = Kind::kRegister;
  txn->impl = this;
  txn->irq = irq;
  txn->method = "REGISTER";
  txn->check = check;

  if (!check.wildcard && !check.fetch) {
    Transport toward = BackendTransport(*request_uri);
    auto advertised =
        Advertised(toward, IsIpv6Literal(backend_ ? backend_->host : request_uri->host));
    if (!advertised.ok()) {
      metrics_.Registrations("no_transport").Inc();
      log_->error("REGISTER aor={}: no listener for transport {} toward the backend", request.aor,
                  TransportName(toward));
      Reply(irq, 503, "No transport toward the registrar");
      return;
    }
    while (fsip->sip_contact != nullptr) {
      sip_header_remove(msg.get(), fsip, reinterpret_cast<sip_header_t*>(fsip->sip_contact));
    }
    std::optional<std::string> insert_domain;
    if (options_.insert_domain) insert_domain = to_uri->host;
    for (size_t i = 0; i < request.contacts.contacts.size(); ++i) {
      const Contact& original = request.contacts.contacts[i];
      TransportInfo phone;
      auto t = UriTransport(original.uri);
      phone.transport = t.ok() ? *t : Transport::kUdp;
      phone.host = original.uri.host;
      phone.port = original.uri.port.value_or(phone.transport == Transport::kTls ? 5061 : 5060);
      Contact masked;
      masked.uri = codec_.Masquerade(original, *advertised, insert_domain, phone, request.aor);
      // Header parameters the backend may use (instance, q); never push or flow parameters.
      for (const auto& [name, value] : original.params) {
        if (absl::EqualsIgnoreCase(name, "expires") || absl::EqualsIgnoreCase(name, "reg-id") ||
            IsPushParamName(name)) {
          continue;
        }
        masked.params.emplace_back(name, value);
      }
      masked.SetParam("expires", absl::StrCat(absl::ToInt64Seconds(check.expiries[i])));
      txn->masquerade_values.push_back(Param(masked.uri, kMasqueradeParam).value_or(""));
      std::string text = FormatContact(masked);
      if (sip_add_make(msg.get(), fsip, sip_contact_class, text.c_str()) < 0) {
        Reply(irq, SIP_500_INTERNAL_SERVER_ERROR);
        return;
      }
      if (txn->pns_provider.empty()) {
        auto push = ParsePushParams(original.uri);
        if (push.ok() && push->has_value()) txn->pns_provider = (*push)->provider_name;
      }
    }
  }

  const url_string_t* route = backend_ ? UrlStr(options_.backend_uri) : nullptr;
  uint64_t id = txn->id;
  Txn* raw = txn.get();
  std::string key = absl::StrCat(id);
  // Registered before sending: nta may answer (transport error) from inside mcreate.
  txns_.emplace(id, std::move(txn));
  UpdateInFlight();
  for (auto& [evicted_id, evicted] : pending_.Insert(
           key, std::move(request), now + options_.transaction_timeout + absl::Seconds(5))) {
    (void)evicted;
    uint64_t eid = 0;
    if (absl::SimpleAtoi(evicted_id, &eid)) {
      log_->warn("too many pending REGISTERs: dropping {}", evicted_id);
      ReplyTxn(eid, 503, "Too many pending registrations", {{"Retry-After", "5"}});
    }
  }
  nta_outgoing_t* orq = nta_outgoing_mcreate(agent_.get(), &Impl::OnResponseCb,
                                             reinterpret_cast<nta_outgoing_magic_t*>(raw), route,
                                             msg.get(), TAG_END());
  if (orq == nullptr) {
    metrics_.Registrations("forward_failed").Inc();
    log_->warn("REGISTER aor={}: cannot forward to the backend", aor);
    pending_.Erase(key);
    ReplyTxn(id, 503, "Registrar unreachable", {{"Retry-After", "5"}});
    return;
  }
  msg.release();  // owned by the transaction now
  metrics_.Forwarded("REGISTER").Inc();
  if (Txn* t = FindTxn(id); t != nullptr && t->orq == nullptr) t->orq = orq;
}

void SipProxy::Impl::HandleOther(nta_incoming_t* irq, const sip_t* sip) {
  MsgPtr request_msg(nta_incoming_getrequest(irq));
  TportRef tport = TportRef::Adopt(nta_incoming_transport(agent_.get(), irq, nullptr));
  std::optional<TransportInfo> source = SourceOf(request_msg.get(), tport.get());
  std::string method = sip->sip_request->rq_method_name ? sip->sip_request->rq_method_name : "";

  if (sip->sip_request->rq_method == sip_method_cancel) {
    // A CANCEL that matched a transaction went to that transaction's callback.
    Reply(irq, SIP_481_NO_TRANSACTION);
    return;
  }
  auto request_uri = ParseUri(UrlString(sip->sip_request->rq_url));
  if (!request_uri.ok()) {
    Reply(irq, 400, std::string(request_uri.status().message()));
    return;
  }
  if (MasqueradeCodec::HasMarker(*request_uri)) {
    auto target = codec_.Restore(*request_uri);
    if (!target.ok()) {
      metrics_.Rejected("bad_masquerade").Inc();
      log_->warn("{} refused: {} source={}", method, target.status().message(),
                 source ? DebugString(*source) : "?");
      Reply(irq, 403, "Invalid masquerade value");
      return;
    }
    // Routing calls to the phones (fork, push, fork-late) belongs to the call half.
    if (call_handler_) {
      std::string aor = target->aor.empty() ? AorKey(target->restored) : target->aor;
      call_handler_->HandleIncoming(irq, sip, aor);
      return;
    }
    metrics_.Rejected("not_routed").Inc();
    Reply(irq, 480, "Temporarily Unavailable");
    return;
  }
  if (FromTrustedBackend(source)) {
    metrics_.Rejected("backend_unknown_target").Inc();
    Reply(irq, 404, "Not Found");
    return;
  }
  std::string route;
  if (backend_) {
    route = options_.backend_uri;
  } else if (domains_.allow_all() || !domains_.Allowed(request_uri->host)) {
    metrics_.Rejected("relay_denied").Inc();
    Reply(irq, 403, "Relaying denied");
    return;
  }
  MsgPtr msg = PrepareForward(irq);
  if (!msg) {
    Reply(irq, SIP_500_INTERNAL_SERVER_ERROR);
    return;
  }
  if (call_handler_ && sip->sip_request->rq_method == sip_method_invite) {
    // Outbound-proxy use: the dialog's later requests come back through us (the call handler
    // relays them), toward the phone over its own connection when it has one, else to the
    // address it sent from. In over one transport, out over another: two entries (RFC 5658).
    std::string flow;
    if (tport && tport_is_connected(tport.get())) {
      flow = flows_.Register(tport.get(), clock_.Now() + absl::Hours(2));
    }
    std::optional<Transport> in = tport ? TportTransport(tport.get()) : std::nullopt;
    std::vector<std::string> routes =
        call_handler_->RecordRoutesFor(in, BackendTransport(*request_uri), flow, source);
    sip_t* fsip = sip_object(msg.get());
    for (auto it = routes.rbegin(); it != routes.rend(); ++it) {
      std::string rr = absl::StrCat("<", *it, ";lr>");
      if (sip_record_route_t* h = sip_record_route_make(msg_home(msg.get()), rr.c_str())) {
        msg_header_insert(msg.get(), reinterpret_cast<msg_pub_t*>(fsip),
                          reinterpret_cast<msg_header_t*>(h));
      }
    }
  }
  auto txn = std::make_unique<Txn>();
  txn->id = next_id_++;
  txn->kind = Kind::kRelay;
  txn->impl = this;
  txn->irq = irq;
  txn->method = method;
  uint64_t id = txn->id;
  Txn* raw = txn.get();
  txns_.emplace(id, std::move(txn));
  UpdateInFlight();
  nta_outgoing_t* orq = nta_outgoing_mcreate(agent_.get(), &Impl::OnResponseCb,
                                             reinterpret_cast<nta_outgoing_magic_t*>(raw),
                                             UrlStr(route), msg.get(), TAG_END());
  if (orq == nullptr) {
    ReplyTxn(id, 503, "Backend unreachable", {{"Retry-After", "5"}});
    return;
  }
  msg.release();
  metrics_.Forwarded(method).Inc();
  Txn* t = FindTxn(id);
  if (t == nullptr) return;  // already answered from inside mcreate
  if (t->orq == nullptr) t->orq = orq;
  if (sip->sip_request->rq_method == sip_method_invite) {
    nta_incoming_bind(irq, &Impl::OnCancelCb, reinterpret_cast<nta_incoming_magic_t*>(t));
  }
}

int SipProxy::Impl::OnResponse(uint64_t id, nta_outgoing_t* orq, const sip_t* sip) {
  Txn* txn = FindTxn(id);
  if (txn == nullptr) return 0;
  if (txn->orq == nullptr) txn->orq = orq;  // answered from inside nta_outgoing_mcreate
  int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
  bool internal = sip == nullptr || nta_sip_is_internal(sip);
  if (status < 200) {
    // Provisional: relay for INVITE (ringing), absorb otherwise. 100 stays hop by hop.
    if (txn->kind == Kind::kRelay && status > 100 && !internal &&
        nta_incoming_method(txn->irq) == sip_method_invite) {
      MsgPtr response(nta_outgoing_getresponse(orq));
      if (response) {
        MsgPtr copy(msg_copy(response.get()));
        sip_t* rsip = sip_object(copy.get());
        if (rsip->sip_via) {
          sip_header_remove(copy.get(), rsip, reinterpret_cast<sip_header_t*>(rsip->sip_via));
        }
        nta_incoming_mreply(txn->irq, copy.release());
      }
    }
    return 0;
  }
  if (internal) {
    // nta's own answer: the backend timed out (408) or could not be reached (503).
    log_->warn("{} to the backend failed: {} (no answer)", txn->method, status);
    if (txn->kind == Kind::kRegister) {
      metrics_.Registrations(status == 408 ? "backend_timeout" : "backend_unreachable").Inc();
      pending_.Erase(absl::StrCat(id));
    }
    if (status == 408) {
      ReplyTxn(id, 408, "Request Timeout");
    } else {
      ReplyTxn(id, status, status == 503 ? "Service Unavailable" : "Backend unreachable");
    }
    return 0;
  }
  if (txn->kind == Kind::kRegister) {
    OnRegisterFinal(*txn, status, sip);
    return 0;
  }
  MsgPtr response(nta_outgoing_getresponse(orq));
  if (!response) {
    ReplyTxn(id, SIP_500_INTERNAL_SERVER_ERROR);
    return 0;
  }
  MsgPtr copy(msg_copy(response.get()));
  sip_t* rsip = sip_object(copy.get());
  if (rsip->sip_via)
    sip_header_remove(copy.get(), rsip, reinterpret_cast<sip_header_t*>(rsip->sip_via));
  RelayAndFinish(id, std::move(copy));
  return 0;
}

void SipProxy::Impl::OnRegisterFinal(Txn& txn, int status, const sip_t* sip) {
  uint64_t id = txn.id;
  MsgPtr response(nta_outgoing_getresponse(txn.orq));
  std::optional<RegisterRequest> request = pending_.Take(absl::StrCat(id), clock_.Now());
  if (!response) {
    ReplyTxn(id, SIP_500_INTERNAL_SERVER_ERROR);
    return;
  }
  MsgPtr copy(msg_copy(response.get()));
  sip_t* rsip = sip_object(copy.get());
  if (rsip->sip_via)
    sip_header_remove(copy.get(), rsip, reinterpret_cast<sip_header_t*>(rsip->sip_via));
  if (status >= 300) {
    // Not registered: relay as is (challenges, 423 Min-Expires...), minus masqueraded contacts.
    while (rsip->sip_contact != nullptr) {
      sip_header_remove(copy.get(), rsip, reinterpret_cast<sip_header_t*>(rsip->sip_contact));
    }
    metrics_.Registrations(absl::StrCat("backend_", status / 100, "xx")).Inc();
    log_->info("REGISTER relayed backend refusal: status={}", status);
    RelayAndFinish(id, std::move(copy));
    return;
  }
  if (!request) {
    // The pending entry expired or was evicted: nothing to bind, do not claim success.
    metrics_.Registrations("pending_lost").Inc();
    ReplyTxn(id, 500, "Registration state lost");
    return;
  }
  // The expiry the backend granted to each masqueraded contact.
  std::vector<absl::Duration> granted;
  if (!txn.check.wildcard && !txn.check.fetch) {
    ContactList backend_contacts;
    for (const std::string& value : ContactValues(sip)) {
      absl::Status st = AppendContacts(value, backend_contacts);
      if (!st.ok()) log_->warn("backend 2xx with unparsable Contact: {}", st.message());
    }
    std::optional<uint32_t> header_expires;
    if (sip->sip_expires) header_expires = sip->sip_expires->ex_delta;
    for (size_t i = 0; i < txn.masquerade_values.size(); ++i) {
      absl::Duration g = txn.check.expiries[i];
      if (!backend_contacts.contacts.empty()) {
        g = absl::ZeroDuration();  // listed by the backend or not registered there
        for (const Contact& c : backend_contacts.contacts) {
          if (Param(c.uri, kMasqueradeParam).value_or("") == txn.masquerade_values[i]) {
            std::optional<uint32_t> e = c.expires();
            if (!e) e = header_expires;
            g = e ? absl::Seconds(*e) : txn.check.expiries[i];
            break;
          }
        }
      } else if (header_expires && txn.check.expiries[i] > absl::ZeroDuration()) {
        g = std::min(g, absl::Seconds(*header_expires));
      }
      granted.push_back(g);
    }
  }
  txn.response = std::move(copy);
  FinishRegister(id, std::move(*request), std::move(granted));
}

void SipProxy::Impl::FinishRegister(uint64_t id, RegisterRequest request,
                                    std::vector<absl::Duration> granted) {
  std::string aor = request.aor;
  auto [turn, first] = aor_turns_.try_emplace(aor);
  auto work = [this, id, request = std::move(request), granted = std::move(granted)]() mutable {
    UpdateBindings(id, std::move(request), std::move(granted));
  };
  if (!first) {
    // Another registration of this AOR is between its Fetch and its Replace: with an
    // asynchronous store, running both at once would let the later Replace drop the earlier
    // one's binding. Each waits for the one before it.
    turn->second.push_back(std::move(work));
    return;
  }
  work();
}

void SipProxy::Impl::NextTurn(const std::string& aor) {
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

void SipProxy::Impl::UpdateBindings(uint64_t id, RegisterRequest request,
                                    std::vector<absl::Duration> granted) {
  std::string aor = request.aor;
  Txn* txn = FindTxn(id);
  if (txn == nullptr) {
    NextTurn(aor);
    return;
  }
  if (txn->check.fetch) {
    // A query (no Contact): list the AOR's bindings, change nothing.
    store_.Fetch(aor, clock_.Now(), [this, id, aor](absl::StatusOr<std::vector<Binding>> found) {
      absl::Time now = clock_.Now();
      std::vector<std::string> answer;
      if (found.ok()) {
        for (const Binding& b : *found) {
          Contact c;
          c.uri = b.contact;
          // Another device's push parameters never leave the gateway.
          c.uri.params.erase(std::remove_if(c.uri.params.begin(), c.uri.params.end(),
                                            [](const auto& p) { return IsPushParamName(p.first); }),
                             c.uri.params.end());
          c.SetParam("expires",
                     absl::StrCat(std::max<int64_t>(0, absl::ToInt64Seconds(b.expires_at - now))));
          answer.push_back(FormatContact(c));
        }
      }
      AnswerRegistration(id, aor, answer, found.status());
      NextTurn(aor);
    });
    return;
  }
  // The phone's own contacts and the expiry granted to each (removed ones are not listed).
  std::vector<std::string> answer;
  if (!txn->check.wildcard) {
    for (size_t i = 0; i < request.contacts.contacts.size() && i < granted.size(); ++i) {
      if (granted[i] <= absl::ZeroDuration()) continue;
      Contact c = request.contacts.contacts[i];
      c.SetParam("expires", absl::StrCat(absl::ToInt64Seconds(granted[i])));
      answer.push_back(FormatContact(c));
    }
  }
  absl::Time now = clock_.Now();
  // Atomic read-modify-write: with Redis, another replica may register a device of this AOR
  // at the same instant; the store re-applies the registration to what it then holds.
  BindingStore::Mutation apply = [request = std::move(request), granted = std::move(granted), now,
                                  rules = options_.registrar](std::vector<Binding> live) {
    return ApplyRegistration(std::move(live), request, granted, now, rules);
  };
  store_.Update(aor, now, std::move(apply),
                [this, id, aor, answer = std::move(answer)](absl::Status st) {
                  AnswerRegistration(id, aor, answer, st);
                  NextTurn(aor);
                });
}

void SipProxy::Impl::AnswerRegistration(uint64_t id, const std::string& aor,
                                        const std::vector<std::string>& answer,
                                        const absl::Status& st) {
  Txn* tx = FindTxn(id);
  if (tx == nullptr) return;
  if (absl::IsAborted(st)) {
    // The AOR kept changing under us (many devices of it registering at once).
    metrics_.Registrations("store_conflict").Inc();
    log_->warn("REGISTER aor={}: {}", aor, st.message());
    ReplyTxn(id, 503, "Registrar busy", {{"Retry-After", "1"}});
    return;
  }
  if (!st.ok()) {
    metrics_.Registrations("store_error").Inc();
    log_->error("REGISTER aor={}: store operation failed: {}", aor, st.message());
    ReplyTxn(id, 503, "Registrar store unavailable",
             {{"Retry-After", absl::StrCat(options_.store_retry_after_seconds)}});
    return;
  }
  MsgPtr msg = std::move(tx->response);
  sip_t* rsip = sip_object(msg.get());
  while (rsip->sip_contact != nullptr) {
    sip_header_remove(msg.get(), rsip, reinterpret_cast<sip_header_t*>(rsip->sip_contact));
  }
  for (const std::string& c : answer) sip_add_make(msg.get(), rsip, sip_contact_class, c.c_str());
  if (!tx->pns_provider.empty()) {
    std::string caps = absl::StrCat("Feature-Caps: *;+sip.pns=\"", tx->pns_provider, "\"");
    sip_add_make(msg.get(), rsip, sip_unknown_class, caps.c_str());
  }
  metrics_.Registrations(tx->check.fetch ? "fetched" : "ok").Inc();
  log_->info("REGISTER ok aor={} contacts={}", aor, answer.size());
  RelayAndFinish(id, std::move(msg));
}

void SipProxy::Impl::ReplyTxn(uint64_t id, int status, const std::string& phrase,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return;
  Txn& txn = *it->second;
  if (txn.irq != nullptr) {
    Reply(txn.irq, status, phrase, headers);
    txn.irq = nullptr;
  }
  Finish(id);
}

void SipProxy::Impl::RelayAndFinish(uint64_t id, MsgPtr msg) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return;
  Txn& txn = *it->second;
  if (txn.irq != nullptr) {
    sip_t* rsip = sip_object(msg.get());
    int status = rsip && rsip->sip_status ? rsip->sip_status->st_status : 500;
    if (nta_incoming_mreply(txn.irq, msg.release()) < 0) {
      log_->warn("{}: relaying the {} response failed", txn.method, status);
    }
    metrics_.Responses(status).Inc();
    nta_incoming_destroy(txn.irq);
    txn.irq = nullptr;
  }
  Finish(id);
}

void SipProxy::Impl::Finish(uint64_t id) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return;
  Txn& txn = *it->second;
  if (txn.orq != nullptr) nta_outgoing_destroy(txn.orq);
  if (txn.irq != nullptr) nta_incoming_destroy(txn.irq);
  txns_.erase(it);
  UpdateInFlight();
}

// ---------------------------------------------------------------------------------------------

SipProxy::SipProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<SipProxy>> SipProxy::Create(SofiaLoop& loop, SipProxyOptions options,
                                                           BindingStore& store,
                                                           const Clock& clock) {
  auto impl = std::make_unique<Impl>(loop, std::move(options), store, clock);
  Impl* raw = impl.get();
  absl::Status st = loop.Call([raw] {
    absl::Status s = raw->Init();
    if (!s.ok()) raw->Shutdown();
    return s;
  });
  if (!st.ok()) return st;
  return std::unique_ptr<SipProxy>(new SipProxy(std::move(impl)));
}

SipProxy::~SipProxy() {
  Impl* raw = impl_.get();
  raw->loop().Call([raw] { raw->Shutdown(); });
}

std::vector<TransportInfo> SipProxy::Listening() const { return impl_->Listening(); }

absl::StatusOr<TransportInfo> SipProxy::Advertised(Transport transport) const {
  return impl_->Advertised(transport);
}

size_t SipProxy::InFlight() const { return impl_->InFlight(); }

void SipProxy::SetCallHandler(
    std::function<std::unique_ptr<CallHandler>(nta_agent_t* agent, FlowLookup flows)> make) {
  Impl* raw = impl_.get();
  raw->loop().Call([raw, &make] { raw->SetCallHandler(make); });
}

size_t SipProxy::Drain(absl::Duration timeout) {
  impl_->SetDraining();
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  while (impl_->InFlight() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return impl_->InFlight();
}

}  // namespace pushgate::proxy::sofia
