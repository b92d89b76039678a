#include "proxy/sofia/sofia_util.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/tport.h>

#include <cstring>

#include "absl/strings/ascii.h"

namespace pushgate::proxy::sofia {

void MsgDeleter::operator()(msg_t* msg) const { msg_destroy(msg); }
void HomeDeleter::operator()(su_home_t* home) const { su_home_unref(home); }
HomePtr NewHome() { return HomePtr(static_cast<su_home_t*>(su_home_new(sizeof(su_home_t)))); }
void AgentDeleter::operator()(nta_agent_t* agent) const { nta_agent_destroy(agent); }
void LegDeleter::operator()(nta_leg_t* leg) const { nta_leg_destroy(leg); }
void IncomingDeleter::operator()(nta_incoming_t* irq) const { nta_incoming_destroy(irq); }
void OutgoingDeleter::operator()(nta_outgoing_t* orq) const { nta_outgoing_destroy(orq); }

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

}  // namespace pushgate::proxy::sofia
