#include "proxy/sofia/sip_proxy.h"

#include <sofia-sip/nta.h>
#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport.h>

#include <atomic>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "proxy/core/domain_policy.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/request_route.h"
#include "proxy/core/route_set.h"
#include "proxy/core/sip_uri.h"
#include "proxy/sofia/flow_table.h"
#include "proxy/sofia/forwarding.h"
#include "proxy/sofia/listeners.h"
#include "proxy/sofia/message_class.h"
#include "proxy/sofia/message_facts.h"
#include "proxy/sofia/proxy_metrics.h"
#include "proxy/sofia/register_relay.h"
#include "proxy/sofia/sofia_log.h"
#include "proxy/sofia/stateful_relay.h"
#include "proxy/sofia/transactions.h"
#include "proxy/sofia/wire_guard.h"

namespace pushgate::proxy::sofia {
namespace {

Method MethodOfRequest(const sip_request_t* rq) {
  switch (rq->rq_method) {
    case sip_method_register:
      return Method::kRegister;
    case sip_method_invite:
      return Method::kInvite;
    case sip_method_ack:
      return Method::kAck;
    case sip_method_cancel:
      return Method::kCancel;
    default:
      return Method::kOther;
  }
}

}  // namespace

RetryAfterConfig RetryAfterOf(const SipProxyOptions& options) {
  RetryAfterConfig retry;
  retry.busy = options.busy_retry_after;
  retry.store = absl::Seconds(options.store_retry_after_seconds);
  retry.conflict = options.conflict_retry_after;
  retry.store_hint = options.store_retry_hint;
  return retry;
}

namespace {
unsigned Millis(absl::Duration d) { return static_cast<unsigned>(absl::ToInt64Milliseconds(d)); }
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
        flows_(absl::StrCat("f", MasqueradeCodec::GenerateSecret().substr(0, 8))),
        txns_(metrics_, RetryAfterOf(options_)),
        log_(log::Get("proxy.sofia")),
        limiter_(options_.rate_limit) {}

  absl::Status Init();  // loop thread
  void Shutdown();      // loop thread

  const Listeners& listeners() const { return listeners_; }
  Transactions& txns() { return txns_; }
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
  // What dispatch learned about a request: the facts Classify decides on, and what carrying the
  // decision out needs.
  struct Incoming {
    RequestFacts facts;
    RequestOrigin origin;
    std::optional<Uri> request_uri;
    std::string uri_error;  // the 400's reason when the request URI does not parse
    CallTarget target;      // restored from a valid masquerade value
  };

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
  static void OnSweepTimer(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) noexcept {
    auto* impl = reinterpret_cast<Impl*>(arg);
    if (impl->shut_down_) return;
    impl->flows_.Sweep(impl->clock_.Now());
    impl->wire_guard_->Sweep(impl->clock_.Now());
  }

  absl::Status CreateAgent();
  int OnRequest(nta_incoming_t* irq, const sip_t* sip);
  // Validation (message_check.h). False: the request was answered (or, an ACK, dropped) and
  // `irq` released.
  bool Validate(nta_incoming_t* irq, const sip_t* sip);
  // The per-source rate limit: false when the request was refused (answered, or dropped).
  bool Admit(IncomingPtr& irq, const sip_t* sip);
  Incoming Examine(nta_incoming_t* irq, const sip_t* sip);
  void ExamineRequestUri(const sip_t* sip, Incoming& in);
  void Reject(IncomingPtr irq, const Incoming& in, Outcome outcome);
  void Relay(IncomingPtr irq, const sip_t* sip, const Incoming& in, const RequestRoute& route);
  // The facts DecideInDialog needs about an in-dialog request routed by our Record-Route.
  InDialogFacts InDialogFactsOf(nta_incoming_t* irq, const sip_t* sip) const;

  SofiaLoop& loop_;
  SipProxyOptions options_;
  BindingStore& store_;
  const Clock& clock_;
  DomainPolicy domains_;
  MasqueradeCodec codec_;
  FlowTable flows_;
  ProxyMetrics metrics_;
  Transactions txns_;
  Listeners listeners_;
  std::shared_ptr<spdlog::logger> log_;
  std::optional<Uri> backend_;
  InDialogPolicy relay_scope_;  // set by Init: backend, trusted backends, domains
  RateLimiter limiter_;

  std::unique_ptr<WireGuard> wire_guard_;  // checks the listeners' bytes before sofia parses
  HomePtr home_;
  AgentPtr agent_;
  LegPtr leg_;
  std::unique_ptr<RegisterRelay> register_relay_;
  std::unique_ptr<StatefulRelay> relay_;
  std::atomic<bool> draining_{false};
  bool shut_down_ = false;
  std::unique_ptr<CallHandler> call_handler_;
  TimerPtr sweep_timer_;  // every second: flows
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
  RETURN_IF_ERROR(CreateAgent());
  wire_guard_ = std::make_unique<WireGuard>(
      WireLimits{options_.max_header_lines, options_.max_connections,
                 options_.max_connections_per_source, options_.message_timeout,
                 TrustedBackends(backend_, options_.trusted_backends)},
      clock_);
  ListenerOptions lo{
      options_.listen,
      options_.advertise,
      options_.tls_certificate_dir,
      backend_ && IsIpv6Literal(backend_->host),
      ConnectionLimits{Millis(options_.connection_idle_timeout), Millis(options_.message_timeout)},
      wire_guard_.get()};
  RETURN_IF_ERROR(listeners_.Bind(agent_.get(), lo));
  relay_scope_.backend = backend_;
  relay_scope_.trusted_backends = TrustedBackends(backend_, options_.trusted_backends);
  relay_scope_.domains = domains_;
  if (backend_) {
    log_->info("backend {}", options_.backend_uri);
  } else {
    log_->info("backend: RFC 3263 resolution of the request URI");
  }
  register_relay_ =
      std::make_unique<RegisterRelay>(agent_.get(), options_, backend_, codec_, store_, clock_,
                                      txns_, listeners_, flows_, metrics_);
  relay_ = std::make_unique<StatefulRelay>(agent_.get(), txns_, metrics_, loop_, clock_,
                                           options_.timer_c);
  leg_.reset(nta_leg_tcreate(agent_.get(), &Impl::OnRequestCb,
                             reinterpret_cast<nta_leg_magic_t*>(this), NTATAG_NO_DIALOG(1),
                             TAG_END()));
  if (!leg_) return absl::InternalError("nta_leg_tcreate (default leg) failed");
  sweep_timer_.reset(su_timer_create(su_root_task(loop_.root()), 1000));
  if (!sweep_timer_) return absl::InternalError("su_timer_create failed");
  su_timer_run(sweep_timer_.get(), &Impl::OnSweepTimer, reinterpret_cast<su_timer_arg_t*>(this));
  return absl::OkStatus();
}

absl::Status SipProxy::Impl::CreateAgent() {
  home_ = NewHome();
  unsigned t1 = static_cast<unsigned>(absl::ToInt64Milliseconds(options_.t1));
  unsigned t1x64 = static_cast<unsigned>(absl::ToInt64Milliseconds(options_.transaction_timeout));
  // (url_string_t*)-1 is sofia's "no listener yet" (Listeners binds them).
  const auto* no_listener = reinterpret_cast<const url_string_t*>(-1);  // NOLINT(*-int-to-ptr)
  agent_.reset(nta_agent_create(
      loop_.root(), no_listener, &Impl::OnMessageCb, reinterpret_cast<nta_agent_magic_t*>(this),
      NTATAG_UA(0), NTATAG_SIP_T1(t1), NTATAG_SIP_T1X64(t1x64), NTATAG_SERVER_RPORT(1),
      NTATAG_CLIENT_RPORT(1), NTATAG_TCP_RPORT(1), NTATAG_TLS_RPORT(1), NTATAG_EXTRA_100(0),
      NTATAG_CANCEL_487(0), NTATAG_PASS_408(1), NTATAG_MAXSIZE(options_.max_message_size),
      NTATAG_MCLASS(ProxyMessageClass()), TAG_END()));
  if (!agent_) return absl::InternalError("nta_agent_create failed");
  return absl::OkStatus();
}

void SipProxy::Impl::Shutdown() {
  shut_down_ = true;
  call_handler_.reset();  // before the agent it uses
  sweep_timer_.reset();
  txns_.CloseAll(Outcome::kShuttingDown);
  register_relay_.reset();
  relay_.reset();
  leg_.reset();
  flows_ = FlowTable("closed");
  agent_.reset();
  home_.reset();
}

InDialogFacts SipProxy::Impl::InDialogFactsOf(nta_incoming_t* irq, const sip_t* sip) const {
  InDialogFacts facts;
  facts.source = OriginOf(agent_.get(), irq).source;
  // Decided without the rest (DecideInDialog's first rule): from a trusted backend.
  if (facts.source && IsTrustedBackend(relay_scope_.trusted_backends, *facts.source)) return facts;
  facts.names_phone = call_handler_->NamesPhone(sip);
  if (facts.names_phone) return facts;  // the second rule
  // The next hop: the Route entry after ours, else the request URI.
  const sip_route_t* r = sip->sip_route;
  for (int i = call_handler_->OwnRoutes(sip); i > 0 && r != nullptr; --i) r = r->r_next;
  auto next = ParseUri(UrlString(r != nullptr ? r->r_url : sip->sip_request->rq_url));
  if (next.ok()) facts.next_hop = *std::move(next);
  return facts;
}

bool SipProxy::Impl::Validate(nta_incoming_t* irq, const sip_t* sip) {
  if (sip == nullptr || sip->sip_request == nullptr) return true;  // Classify refuses it
  RequestOrigin origin = OriginOf(agent_.get(), irq);
  MsgPtr msg(nta_incoming_getrequest(irq));
  if (!msg) return true;
  const bool datagram = origin.tport && tport_is_dgram(origin.tport.get());
  CheckResult check = CheckSofiaMessage(msg.get(), datagram);
  if (check.ok) return true;
  const bool ack = sip->sip_request->rq_method == sip_method_ack;
  InvalidMessages(ack ? "ack" : "request").Inc();
  log_->info("{} refused: {} source={}",
             sip->sip_request->rq_method_name ? sip->sip_request->rq_method_name : "?",
             check.reason, origin.source ? DebugString(*origin.source) : "?");
  IncomingPtr owned(irq);  // an ACK: dropped when it goes
  if (!ack) txns_.Refuse(std::move(owned), Outcome::kInvalidMessage, check.reason);
  return false;
}

bool SipProxy::Impl::Admit(IncomingPtr& irq, const sip_t* sip) {
  if (options_.rate_limit.requests <= 0) return true;
  const std::optional<TransportInfo> source = OriginOf(agent_.get(), irq.get()).source;
  if (!source) return true;
  if (IsTrustedBackend(relay_scope_.trusted_backends, *source)) {
    metrics_.RateLimit("exempt").Inc();
    return true;
  }
  if (limiter_.Check(source->host, clock_.Now()) == RateVerdict::kAllowed) {
    metrics_.RateLimit("allowed").Inc();
    return true;
  }
  metrics_.RateLimit("blocked").Inc();
  const bool ack = sip->sip_request != nullptr && sip->sip_request->rq_method == sip_method_ack;
  if (!options_.rate_limit_silent && !ack) txns_.Refuse(std::move(irq), Outcome::kRateLimited);
  return false;  // irq (when still held) is destroyed unanswered: silence
}

int SipProxy::Impl::OnRequest(nta_incoming_t* raw, const sip_t* sip) {
  IncomingPtr irq(raw);
  // The per-source budget first (the cheapest check), then every request is validated once,
  // before anything reads it (message_check.h).
  if (!Admit(irq, sip)) return 0;
  if (!Validate(irq.get(), sip)) {
    (void)irq.release();  // Validate answered (or dropped) and released it
    return 0;
  }
  Incoming in = Examine(irq.get(), sip);
  const RequestRoute route = Classify(in.facts);
  switch (route.route) {
    case Route::kInDialog:
      call_handler_->HandleInDialog(irq.release(), sip);
      break;
    case Route::kForwardAck:
      if (MsgPtr msg = ForwardCopy(irq.get(), listeners_.ours())) {
        nta_msg_tsend(agent_.get(), msg.release(), RouteUrl(options_.backend_uri), TAG_END());
      }
      break;
    case Route::kAbsorbAck:
      break;
    case Route::kDrop:
      metrics_.Rejected(LabelOf(route.outcome)).Inc();
      break;
    case Route::kReject:
      Reject(std::move(irq), in, route.outcome);
      break;
    case Route::kRegister:
      register_relay_->Handle(std::move(irq), sip);
      break;
    case Route::kToAor:
      call_handler_->HandleIncoming(irq.release(), sip, in.target);
      break;
    case Route::kRelayToBackend:
    case Route::kRelayToRequestUri:
      Relay(std::move(irq), sip, in, route);
      break;
  }
  return 0;
}

SipProxy::Impl::Incoming SipProxy::Impl::Examine(nta_incoming_t* irq, const sip_t* sip) {
  Incoming in;
  RequestFacts& f = in.facts;
  f.parsed = sip != nullptr && sip->sip_request != nullptr;
  if (!f.parsed) return in;
  f.method = MethodOfRequest(sip->sip_request);
  if (sip->sip_max_forwards != nullptr) f.max_forwards = sip->sip_max_forwards->mf_count;
  f.draining = draining_;
  f.has_backend = backend_.has_value();
  f.has_call_handler = call_handler_ != nullptr;
  f.our_route = f.has_call_handler && call_handler_->IsOurRoute(sip);
  if (f.our_route) {
    f.in_dialog_allowed =
        DecideInDialog(InDialogFactsOf(irq, sip), relay_scope_) != InDialogVerdict::kDenied;
    return in;
  }
  if (f.method == Method::kRegister) return in;  // the register relay looks for itself
  in.origin = OriginOf(agent_.get(), irq);
  f.from_trusted_backend =
      in.origin.source && IsTrustedBackend(relay_scope_.trusted_backends, *in.origin.source);
  if (f.method != Method::kAck && f.method != Method::kCancel) ExamineRequestUri(sip, in);
  return in;
}

void SipProxy::Impl::ExamineRequestUri(const sip_t* sip, Incoming& in) {
  RequestFacts& f = in.facts;
  auto request_uri = ParseUri(UrlString(sip->sip_request->rq_url));
  f.request_uri_valid = request_uri.ok();
  if (!request_uri.ok()) {
    in.uri_error = std::string(request_uri.status().message());
    return;
  }
  in.request_uri = *std::move(request_uri);
  f.relay_domain_allowed =
      !backend_ && !domains_.allow_all() && domains_.Allowed(in.request_uri->host);
  f.masquerade_marker = MasqueradeCodec::HasMarker(*in.request_uri);
  if (!f.masquerade_marker) return;
  auto target = codec_.Restore(*in.request_uri);
  f.masquerade_valid = target.ok();
  if (!target.ok()) {
    log_->warn("{} refused: {} source={}", sip->sip_request->rq_method_name,
               target.status().message(), in.origin.source ? DebugString(*in.origin.source) : "?");
    return;
  }
  in.target = CallTargetOf(*target);
}

void SipProxy::Impl::Reject(IncomingPtr irq, const Incoming& in, Outcome outcome) {
  // A REGISTER refused before the register relay (Max-Forwards, draining) counts as a
  // registration result; any other request as a rejection.
  if (in.facts.method == Method::kRegister) {
    metrics_.Registrations(LabelOf(outcome)).Inc();
  } else {
    metrics_.Rejected(LabelOf(outcome)).Inc();
  }
  txns_.Refuse(std::move(irq), outcome, outcome == Outcome::kBadRequest ? in.uri_error : "");
}

void SipProxy::Impl::Relay(IncomingPtr irq, const sip_t* sip, const Incoming& in,
                           const RequestRoute& route) {
  MsgPtr msg = ForwardCopy(irq.get(), listeners_.ours());
  if (!msg) {
    txns_.Refuse(std::move(irq), Outcome::kInternalError);
    return;
  }
  if (route.record_route) {
    // Outbound-proxy use: the dialog's later requests come back through us (the call handler
    // relays them), toward the phone over its own connection when it has one, else to the
    // address it sent from. In over one transport, out over another: two entries (RFC 5658).
    const TportRef& tport = in.origin.tport;
    std::string flow;
    if (tport && tport_is_connected(tport.get())) {
      flow = flows_.Register(tport.get(), clock_.Now() + absl::Hours(2));
    }
    std::optional<Transport> from = tport ? TportTransport(tport.get()) : std::nullopt;
    AddRecordRoutes(
        msg.get(), call_handler_->RecordRoutesFor(from, NextHopTransport(backend_, *in.request_uri),
                                                  flow, in.origin.source));
  }
  const char* method = sip->sip_request->rq_method_name ? sip->sip_request->rq_method_name : "";
  relay_->Relay(std::move(irq), method, std::move(msg),
                route.route == Route::kRelayToBackend ? options_.backend_uri : std::string());
}

// ---------------------------------------------------------------------------------------------

SipProxy::SipProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<SipProxy>> SipProxy::Create(SofiaLoop& loop, SipProxyOptions options,
                                                           BindingStore& store,
                                                           const Clock& clock) {
  RedirectSofiaLogs();  // before the agent exists: its accept errors can flood (issue 13)
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

std::vector<TransportInfo> SipProxy::Listening() const { return impl_->listeners().Listening(); }

absl::StatusOr<TransportInfo> SipProxy::Advertised(Transport transport) const {
  return impl_->listeners().Advertised(transport);
}

size_t SipProxy::InFlight() const { return impl_->txns().InFlight(); }

void SipProxy::SetCallHandler(
    std::function<std::unique_ptr<CallHandler>(nta_agent_t* agent, FlowLookup flows)> make) {
  Impl* raw = impl_.get();
  raw->loop().Call([raw, &make] { raw->SetCallHandler(make); });
}

size_t SipProxy::Drain(absl::Duration timeout) {
  impl_->SetDraining();
  return impl_->txns().WaitIdle(timeout);
}

}  // namespace pushgate::proxy::sofia
