#include "proxy/sofia/forwarding.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proxy/sofia/message_facts.h"
#include "proxy/sofia/proxy_metrics.h"

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

MsgPtr CopyForForward(msg_t* original, int strip_routes) {
  MsgPtr msg(msg_copy(original));
  if (!msg) return nullptr;
  sip_t* sip = sip_object(msg.get());
  DecrementMaxForwards(msg.get(), sip);
  for (int i = 0; i < strip_routes && sip->sip_route != nullptr; ++i) {
    sip_header_remove(msg.get(), sip, reinterpret_cast<sip_header_t*>(sip->sip_route));
  }
  return msg;
}

MsgPtr ForwardCopy(nta_incoming_t* irq, const RouteSet& ours) {
  MsgPtr original(nta_incoming_getrequest(irq));
  if (!original) return nullptr;
  const sip_t* sip = sip_object(original.get());
  const bool ours_on_top = sip->sip_route != nullptr && IsOwnUrl(ours, sip->sip_route->r_url);
  return CopyForForward(original.get(), ours_on_top ? 1 : 0);
}

void AddRecordRoutes(msg_t* msg, const std::vector<std::string>& uris) {
  sip_t* sip = sip_object(msg);
  for (auto it = uris.rbegin(); it != uris.rend(); ++it) {
    std::string rr = absl::StrCat("<", *it, ";lr>");
    if (sip_record_route_t* h = sip_record_route_make(msg_home(msg), rr.c_str())) {
      msg_header_insert(msg, reinterpret_cast<msg_pub_t*>(sip), reinterpret_cast<msg_header_t*>(h));
    }
  }
}

std::string LooseTarget(const sip_t* sip) {
  return sip->sip_route != nullptr ? UrlString(sip->sip_route->r_url)
                                   : UrlString(sip->sip_request->rq_url);
}

MsgPtr ResponseToRelay(msg_t* response) {
  // Never relay what sofia cannot serialize (a duplicated single-instance header asserts in
  // msg_serialize) nor numbers we would misread: dropped and counted; the caller treats the
  // response as lost (500 to the client, or the transaction's timeout).
  CheckResult check = CheckSofiaMessage(response, false);
  if (!check.ok) {
    static metrics::Counter& dropped = InvalidMessages("response");
    dropped.Inc();
    return nullptr;
  }
  MsgPtr copy(msg_copy(response));
  if (copy) RemoveTopVia(copy.get(), sip_object(copy.get()));
  return copy;
}

MsgPtr ResponseToRelay(nta_outgoing_t* orq) {
  MsgPtr response(nta_outgoing_getresponse(orq));
  return response ? ResponseToRelay(response.get()) : nullptr;
}

void ReplyAndClose(IncomingPtr irq, Outcome outcome, const RetryAfterConfig& retry) {
  if (irq) ReplyWith(irq.get(), outcome, retry);
}

}  // namespace pushgate::proxy::sofia
