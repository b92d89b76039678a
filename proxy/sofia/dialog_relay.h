// In-dialog requests of the calls through the gateway (ACK, BYE, re-INVITE, UPDATE, INFO, PRACK,
// ... in either direction): their top Route is our Record-Route (RouteSet), put on the INVITE by
// CallRouter or by the SIP proxy's relay. They are relayed by loose routing, our Route entry (or
// RFC 5658 pair) consumed, Max-Forwards decremented:
//  - toward the phone over its own connection when our Route names its live flow (";pgf=") and
//    the request did not come over it;
//  - else to the phone's signed address (";pga=", phones behind NAT without a kept connection)
//    unless the request comes from there;
//  - else to the next Route entry, or the request URI.
// ACK statelessly; anything else through an nta client transaction whose responses go back
// (provisional, final; nta's own timeout/unreachable answered with an outcome of ours, as every
// answer we make: proxy/core/outcomes.h); a CANCELled re-INVITE
// is CANCELled onward. Whether a request may be relayed at all is the caller's check
// (DecideInDialog in proxy/core/route_set.h).
//
// Loop thread only (construct and destroy on it). Owns its transactions (IncomingPtr/OutgoingPtr);
// the destructor answers 503 to those in progress. `routes` and the agent must outlive it.
#pragma once

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "common/log.h"
#include "proxy/core/route_set.h"
#include "proxy/core/transport.h"
#include "proxy/sofia/forwarding.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/sip_proxy.h"

namespace pushgate::proxy::sofia {

class DialogRelay final {
 public:
  DialogRelay(SofiaLoop& loop, nta_agent_t* agent, const RouteSet& routes, FlowLookup flows,
              RetryAfterConfig retry_after);
  ~DialogRelay();
  DialogRelay(const DialogRelay&) = delete;
  DialogRelay& operator=(const DialogRelay&) = delete;

  // How many of the request's top Route entries are ours (0, 1, 2 for an RFC 5658 pair).
  int OwnRoutes(const sip_t* sip) const;
  // True when one of our Route entries names a phone: a flow still connected, or a valid signed
  // address.
  bool NamesPhone(const sip_t* sip) const;
  // Relays a request whose top Route is ours. Takes over `irq` (answers and destroys it).
  void HandleInDialog(nta_incoming_t* irq, const sip_t* sip);

 private:
  struct Relay;

  static int OnResponseCb(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                          const sip_t* sip) noexcept;
  static int OnCancelCb(nta_incoming_magic_t* magic, nta_incoming_t* irq,
                        const sip_t* sip) noexcept;
  void OnResponse(Relay& relay, nta_outgoing_t* orq, const sip_t* sip);
  // The phone's live flow named by `own` when the request did not come in over it, else null.
  tport_t* FlowToward(const OwnRouteEntries& own, const TportRef& in) const;
  // The phone's signed address in `own` (a bad one is logged and ignored).
  std::optional<TransportInfo> PhoneAddress(const OwnRouteEntries& own) const;
  // A stateful relay of `msg` to `target` (over `flow` when not null).
  void Forward(IncomingPtr irq, MsgPtr msg, const std::string& target, tport_t* flow, bool invite);
  void FreeLater(uint64_t id);

  SofiaLoop& loop_;
  nta_agent_t* agent_;
  const RouteSet& routes_;
  FlowLookup flows_;
  RetryAfterConfig retry_after_;  // of our own answers (the outcome table)
  std::shared_ptr<spdlog::logger> log_;
  std::map<uint64_t, std::unique_ptr<Relay>> relays_;
  uint64_t next_id_ = 1;
  // Posted frees may run after the relay is gone: they hold a weak reference.
  std::shared_ptr<DialogRelay*> alive_;
};

}  // namespace pushgate::proxy::sofia
