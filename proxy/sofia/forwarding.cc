#include "proxy/sofia/forwarding.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/tport.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "proxy/core/relay_rules.h"

namespace pushgate::proxy::sofia {

bool IsOwnUrl(const RouteSet& routes, const url_t* url) {
  if (url == nullptr || url->url_host == nullptr) return false;
  std::optional<uint16_t> port;
  if (url->url_port != nullptr) {
    int p = std::atoi(url->url_port);
    if (p <= 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  }
  return routes.IsOwnAddress(url->url_type == url_sips, url->url_host, port);
}

OwnRouteEntries OwnRoutesOf(const RouteSet& routes, const sip_t* sip, bool parse) {
  OwnRouteEntries own;
  if (sip == nullptr || routes.empty() || sip->sip_route == nullptr) return own;
  const sip_route_t* top = sip->sip_route;
  if (!IsOwnUrl(routes, top->r_url)) return own;
  own.count = 1;
  const sip_route_t* next = top->r_next;
  const bool pair = next != nullptr && IsOwnUrl(routes, next->r_url);
  if (!parse && !pair) return own;
  auto first = ParseUri(UrlString(top->r_url));
  if (!first.ok()) return own;
  own.parsed.push_back(*std::move(first));
  if (!pair) return own;
  auto second = ParseUri(UrlString(next->r_url));
  if (!second.ok()) return own;
  own.parsed.push_back(*std::move(second));
  own.count = routes.OwnRoutes(own.parsed);
  own.parsed.resize(static_cast<size_t>(own.count));
  return own;
}

std::optional<uint32_t> MaxForwardsOf(const sip_t* sip) {
  if (sip == nullptr || sip->sip_max_forwards == nullptr) return std::nullopt;
  return static_cast<uint32_t>(
      std::min<unsigned long>(sip->sip_max_forwards->mf_count, UINT32_MAX));
}

MsgPtr CopyForForward(msg_t* original, int strip_routes) {
  MsgPtr msg(msg_copy(original));
  if (!msg) return nullptr;
  sip_t* sip = sip_object(msg.get());
  std::string mf = absl::StrCat(ForwardedMaxForwards(MaxForwardsOf(sip)));
  sip_add_tl(msg.get(), sip, SIPTAG_MAX_FORWARDS_STR(mf.c_str()), TAG_END());
  for (int i = 0; i < strip_routes && sip->sip_route != nullptr; ++i) {
    sip_header_remove(msg.get(), sip, reinterpret_cast<sip_header_t*>(sip->sip_route));
  }
  return msg;
}

std::string LooseTarget(const sip_t* sip) {
  return sip->sip_route != nullptr ? UrlString(sip->sip_route->r_url)
                                   : UrlString(sip->sip_request->rq_url);
}

MsgPtr ResponseToRelay(msg_t* response) {
  MsgPtr copy(msg_copy(response));
  if (!copy) return nullptr;
  sip_t* rsip = sip_object(copy.get());
  if (rsip->sip_via) {
    sip_header_remove(copy.get(), rsip, reinterpret_cast<sip_header_t*>(rsip->sip_via));
  }
  return copy;
}

void ReplyAndClose(IncomingPtr irq, int status, const char* reason) {
  if (irq) nta_incoming_treply(irq.get(), status, reason, TAG_END());
}

const url_string_t* TargetUrl(const std::string& s) {
  return s.empty() ? nullptr : reinterpret_cast<const url_string_t*>(s.c_str());
}

CallInfo CallInfoOf(const sip_t* sip) {
  CallInfo info;
  if (sip->sip_call_id && sip->sip_call_id->i_id) info.call_id = sip->sip_call_id->i_id;
  if (sip->sip_from) {
    info.caller_uri = UrlString(sip->sip_from->a_url);
    if (sip->sip_from->a_display) {
      std::string d = sip->sip_from->a_display;
      if (d.size() >= 2 && d.front() == '"' && d.back() == '"') d = d.substr(1, d.size() - 2);
      info.caller_display_name = d;
    }
  }
  return info;
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

}  // namespace pushgate::proxy::sofia
