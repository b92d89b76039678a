#include "proxy/sofia/sofia_util.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/tport.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "proxy/core/relay_rules.h"

namespace pushgate::proxy::sofia {

void MsgDeleter::operator()(msg_t* msg) const { msg_destroy(msg); }
void HomeDeleter::operator()(su_home_t* home) const { su_home_unref(home); }
HomePtr NewHome() { return HomePtr(static_cast<su_home_t*>(su_home_new(sizeof(su_home_t)))); }
void AgentDeleter::operator()(nta_agent_t* agent) const { nta_agent_destroy(agent); }
void LegDeleter::operator()(nta_leg_t* leg) const { nta_leg_destroy(leg); }
void IncomingDeleter::operator()(nta_incoming_t* irq) const { nta_incoming_destroy(irq); }
void OutgoingDeleter::operator()(nta_outgoing_t* orq) const { nta_outgoing_destroy(orq); }
void TimerDeleter::operator()(su_timer_t* timer) const { su_timer_destroy(timer); }

TportRef::TportRef(tport_t* tp) : tp_(tp ? tport_ref(tp) : nullptr) {}
TportRef TportRef::Adopt(tport_t* tp) {
  TportRef r;
  r.tp_ = tp;
  return r;
}
TportRef::TportRef(const TportRef& other) : TportRef(other.tp_) {}
TportRef& TportRef::operator=(const TportRef& other) {
  if (this != &other) {
    reset();
    tp_ = other.tp_ ? tport_ref(other.tp_) : nullptr;
  }
  return *this;
}
TportRef::TportRef(TportRef&& other) noexcept : tp_(other.tp_) { other.tp_ = nullptr; }
TportRef& TportRef::operator=(TportRef&& other) noexcept {
  if (this != &other) {
    reset();
    tp_ = other.tp_;
    other.tp_ = nullptr;
  }
  return *this;
}
TportRef::~TportRef() { reset(); }
void TportRef::reset() {
  if (tp_ != nullptr) tport_unref(tp_);
  tp_ = nullptr;
}

std::string HeaderValue(const sip_header_t* header) {
  if (header == nullptr) return "";
  // Encode into a buffer large enough for any header (sip_header_as_string loses parameters of
  // headers longer than its first guess).
  std::string buf(1024, '\0');
  for (int attempt = 0; attempt < 6; ++attempt) {
    issize_t n = msg_header_field_e(buf.data(), static_cast<isize_t>(buf.size()),
                                    reinterpret_cast<const msg_header_t*>(header), 0);
    if (n >= 0 && static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    buf.assign(buf.size() * 4, '\0');
  }
  return "";
}

std::vector<std::string> ContactValues(const sip_t* sip) {
  std::vector<std::string> out;
  if (sip == nullptr) return out;
  for (const sip_contact_t* m = sip->sip_contact; m != nullptr; m = m->m_next) {
    // Print each contact on its own: sip_header_as_string prints one header of a list.
    sip_contact_t copy = *m;
    copy.m_next = nullptr;
    out.push_back(HeaderValue(reinterpret_cast<const sip_header_t*>(&copy)));
  }
  return out;
}

std::string UrlString(const url_t* url) {
  if (url == nullptr) return "";
  HomePtr home = NewHome();
  char* text = url_as_string(home.get(), url);
  return text ? std::string(text) : std::string();
}

std::optional<Transport> TportTransport(const tport_t* tp) {
  if (tp == nullptr) return std::nullopt;
  const tp_name_t* name = tport_name(tp);
  if (name == nullptr || name->tpn_proto == nullptr) return std::nullopt;
  auto t = ParseTransport(name->tpn_proto);
  if (!t.ok()) return std::nullopt;
  return *t;
}

std::optional<TransportInfo> SourceOf(msg_t* msg, const tport_t* tp) {
  if (msg == nullptr) return std::nullopt;
  su_addrinfo_t* ai = msg_addrinfo(msg);
  if (ai == nullptr || ai->ai_addr == nullptr || ai->ai_addrlen == 0) return std::nullopt;
  auto hp = SockaddrToHostPort(ai->ai_addr);
  if (!hp) return std::nullopt;
  TransportInfo info;
  info.host = hp->first;
  info.port = hp->second;
  std::optional<Transport> t = TportTransport(tp);
  if (t) {
    info.transport = *t;
  } else {
    info.transport = ai->ai_protocol == IPPROTO_TCP ? Transport::kTcp : Transport::kUdp;
  }
  return info;
}

std::string MessageText(msg_t* msg) {
  if (msg == nullptr) return "";
  HomePtr home = NewHome();
  size_t len = 0;
  char* text = msg_as_string(home.get(), msg, nullptr, 0, &len);
  return text ? std::string(text, len) : std::string();
}

const url_string_t* RouteUrl(const std::string& s) {
  return s.empty() ? nullptr : reinterpret_cast<const url_string_t*>(s.c_str());
}

RequestOrigin OriginOf(nta_agent_t* agent, nta_incoming_t* irq) {
  RequestOrigin origin;
  MsgPtr request(nta_incoming_getrequest(irq));
  origin.tport = TportRef::Adopt(nta_incoming_transport(agent, irq, nullptr));
  origin.source = SourceOf(request.get(), origin.tport.get());
  return origin;
}

void RemoveTopVia(msg_t* msg, sip_t* sip) {
  if (sip->sip_via != nullptr) {
    sip_header_remove(msg, sip, reinterpret_cast<sip_header_t*>(sip->sip_via));
  }
}

void RemoveContacts(msg_t* msg, sip_t* sip) {
  while (sip->sip_contact != nullptr) {
    sip_header_remove(msg, sip, reinterpret_cast<sip_header_t*>(sip->sip_contact));
  }
}

void DecrementMaxForwards(msg_t* msg, sip_t* sip) {
  std::string mf = absl::StrCat(ForwardedMaxForwards(MaxForwardsOf(sip)));
  sip_add_tl(msg, sip, SIPTAG_MAX_FORWARDS_STR(mf.c_str()), TAG_END());
}

std::optional<uint32_t> MaxForwardsOf(const sip_t* sip) {
  if (sip == nullptr || sip->sip_max_forwards == nullptr) return std::nullopt;
  return static_cast<uint32_t>(
      std::min<unsigned long>(sip->sip_max_forwards->mf_count, UINT32_MAX));
}

std::vector<TransportInfo> ListenersOf(nta_agent_t* agent) {
  std::vector<TransportInfo> listeners;
  for (tport_t* tp = agent != nullptr ? tport_primaries(nta_agent_tports(agent)) : nullptr;
       tp != nullptr; tp = tport_next(tp)) {
    std::optional<Transport> t = TportTransport(tp);
    const su_addrinfo_t* ai = tport_get_address(tp);
    auto hp = ai != nullptr ? SockaddrToHostPort(ai->ai_addr) : std::nullopt;
    if (t && hp) listeners.push_back(TransportInfo{*t, hp->first, hp->second});
  }
  return listeners;
}

void ReplyWith(nta_incoming_t* irq, Outcome outcome, const RetryAfterConfig& retry) {
  const OutcomeInfo& info = Describe(outcome);
  const char* reason = info.reason.data();  // a literal of the table: NUL-terminated
  if (info.retry_after == RetryAfter::kNone) {
    nta_incoming_treply(irq, info.status, reason, TAG_END());
    return;
  }
  std::array<char, 40> header{};
  std::snprintf(header.data(), header.size(), "Retry-After: %lld",
                static_cast<long long>(absl::ToInt64Seconds(RetryDelayOf(outcome, retry))));
  nta_incoming_treply(irq, info.status, reason, SIPTAG_HEADER_STR(header.data()), TAG_END());
}

void ReplyWith(nta_incoming_t* irq, const SipAnswer& answer) {
  std::string extra;
  for (const auto& [name, value] : answer.headers) {
    absl::StrAppend(&extra, extra.empty() ? "" : "\r\n", name, ": ", value);
  }
  nta_incoming_treply(irq, answer.status, answer.reason.c_str(),
                      TAG_IF(!extra.empty(), SIPTAG_HEADER_STR(extra.c_str())), TAG_END());
}

}  // namespace pushgate::proxy::sofia
