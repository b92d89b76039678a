// RAII owners for sofia objects and conversions between sofia's parsed messages and the plain
// values of proxy/core. Header values cross the boundary as text and go through the core parsers,
// so there is exactly one SIP grammar the registrar logic depends on.
#pragma once

#include <sofia-sip/msg.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/url.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/net.h"
#include "proxy/core/outcomes.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy::sofia {

struct MsgDeleter {
  void operator()(msg_s* msg) const;
};
// One reference to a msg_t (msg_destroy drops it).
using MsgPtr = std::unique_ptr<msg_s, MsgDeleter>;

struct HomeDeleter {
  void operator()(su_home_s* home) const;
};
// A reference-counted su_home (su_home_new / su_home_unref).
using HomePtr = std::unique_ptr<su_home_s, HomeDeleter>;
HomePtr NewHome();

struct AgentDeleter {
  void operator()(nta_agent_s* agent) const;
};
using AgentPtr = std::unique_ptr<nta_agent_s, AgentDeleter>;

struct LegDeleter {
  void operator()(nta_leg_s* leg) const;
};
using LegPtr = std::unique_ptr<nta_leg_s, LegDeleter>;

struct IncomingDeleter {
  void operator()(nta_incoming_s* irq) const;
};
using IncomingPtr = std::unique_ptr<nta_incoming_s, IncomingDeleter>;

struct OutgoingDeleter {
  void operator()(nta_outgoing_s* orq) const;
};
using OutgoingPtr = std::unique_ptr<nta_outgoing_s, OutgoingDeleter>;

struct TimerDeleter {
  void operator()(su_timer_s* timer) const;
};
using TimerPtr = std::unique_ptr<su_timer_s, TimerDeleter>;

// A counted reference to a transport (tport_ref / tport_unref); copyable.
class TportRef {
 public:
  TportRef() = default;
  // Takes a new reference on `tp` (may be null).
  explicit TportRef(tport_s* tp);
  // Adopts a reference the caller already owns.
  static TportRef Adopt(tport_s* tp);
  TportRef(const TportRef& other);
  TportRef& operator=(const TportRef& other);
  TportRef(TportRef&& other) noexcept;
  TportRef& operator=(TportRef&& other) noexcept;
  ~TportRef();

  tport_s* get() const { return tp_; }
  explicit operator bool() const { return tp_ != nullptr; }
  void reset();

 private:
  tport_s* tp_ = nullptr;
};

// Text of one header value as sofia prints it (no name, no CRLF): "<sip:a@b>;expires=60".
std::string HeaderValue(const sip_header_t* header);

// All Contact header values of a message, one string per contact (a list header is split).
std::vector<std::string> ContactValues(const sip_s* sip);

// "sip:user@host;p" for a sofia URL.
std::string UrlString(const url_t* url);

// The transport of a tport ("udp", "tcp", "tls") as a core value.
std::optional<Transport> TportTransport(const tport_s* tp);

// Where the message came from: peer address from the msg, transport from the tport that
// received it. Nullopt when the message has no address (internal messages).
std::optional<TransportInfo> SourceOf(msg_s* msg, const tport_s* tp);

// The whole message as text, for logs and tests.
std::string MessageText(msg_s* msg);

// A string as the url_string_t sofia's send functions take; null for "" (no explicit route).
const url_string_t* RouteUrl(const std::string& s);

// Where an incoming request came from (SourceOf its message and transport), and that transport.
struct RequestOrigin {
  TportRef tport;
  std::optional<TransportInfo> source;
};
RequestOrigin OriginOf(nta_agent_s* agent, nta_incoming_s* irq);

// Message surgery shared by every relay (sip is the message's sip_t):
// the top Via (ours, on a response going back),
void RemoveTopVia(msg_s* msg, sip_s* sip);
// every Contact header,
void RemoveContacts(msg_s* msg, sip_s* sip);
// Max-Forwards decremented (ForwardedMaxForwards: 70 when absent or larger, never below 0).
void DecrementMaxForwards(msg_s* msg, sip_s* sip);
// Max-Forwards of a request, nullopt when absent.
std::optional<uint32_t> MaxForwardsOf(const sip_s* sip);

// The agent's listeners (transport and bound address).
std::vector<TransportInfo> ListenersOf(nta_agent_s* agent);

// Answers `irq` (does not destroy it) with `answer`, or straight from the outcome table (no
// allocation: the reason is the table's literal, Retry-After formatted on the stack).
void ReplyWith(nta_incoming_s* irq, const SipAnswer& answer);
void ReplyWith(nta_incoming_s* irq, Outcome outcome, const RetryAfterConfig& retry);

}  // namespace pushgate::proxy::sofia
