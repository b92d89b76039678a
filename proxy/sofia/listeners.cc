#include "proxy/sofia/listeners.h"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "proxy/core/sip_uri.h"

namespace pushgate::proxy::sofia {
namespace {

constexpr unsigned kUdpReceiveBuffer = 4u << 20;

absl::Status AddListener(nta_agent_t* agent, const TransportInfo& l, const std::string& tls_dir,
                         const ConnectionLimits& limits, WireGuard* guard) {
  // The sockets sofia binds now are this listener's: the guard watches them.
  std::optional<WireGuard::Capture> capture;
  if (guard != nullptr) capture.emplace(*guard, /*tls=*/l.transport == Transport::kTls);
  // sofia's "none" is UINT_MAX for both.
  const unsigned idle = limits.idle_ms > 0 ? limits.idle_ms : UINT_MAX;
  const unsigned timeout = limits.message_ms > 0 ? limits.message_ms : UINT_MAX;
  const std::string url = AddressUri(l, UriForm::kListener);
  int rc;
  if (l.transport == Transport::kTls) {
    if (tls_dir.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("listener ", DebugString(l), " needs a TLS certificate directory"));
    }
    rc = nta_agent_add_tport(agent, RouteUrl(url), TPTAG_CERTIFICATE(tls_dir.c_str()),
                             TPTAG_IDLE(idle), TPTAG_TIMEOUT(timeout), TPTAG_PONG2PING(1),
                             TAG_END());
  } else {
    // A large UDP receive buffer rides out short stalls of the loop thread under load (the
    // kernel default, ~200 KiB, is ~8 ms of REGISTERs at 11,000/s: bench/register saw drops).
    // The kernel caps it at net.core.rmem_max.
    rc = nta_agent_add_tport(agent, RouteUrl(url), TPTAG_UDP_RMEM(kUdpReceiveBuffer),
                             TPTAG_IDLE(idle), TPTAG_TIMEOUT(timeout), TPTAG_PONG2PING(1),
                             TAG_END());
  }
  if (rc < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", DebugString(l), " (", url, "): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// The host sofia puts in its Via for `transport` and the IP family asked ("" when none).
std::string ViaHost(nta_agent_t* agent, Transport transport, bool v6) {
  for (const sip_via_t* v = nta_agent_via(agent); v != nullptr; v = v->v_next) {
    absl::string_view proto = v->v_protocol ? v->v_protocol : "";
    if (absl::EqualsIgnoreCase(proto.substr(proto.rfind('/') + 1), TransportName(transport)) &&
        v->v_host != nullptr && IsIpv6Literal(v->v_host) == v6) {
      return std::string(BareHost(v->v_host));
    }
  }
  return "";
}

}  // namespace

std::vector<TransportInfo> ElectAdvertised(const std::vector<TransportInfo>& listening,
                                           const std::vector<TransportInfo>& configured,
                                           const ViaHostFn& via_host) {
  std::vector<TransportInfo> advertised;
  for (const TransportInfo& l : listening) {
    const bool v6 = IsIpv6Literal(l.host);
    auto same_kind = [&](const TransportInfo& a) {
      return a.transport == l.transport && IsIpv6Literal(a.host) == v6;
    };
    auto it = std::find_if(configured.begin(), configured.end(), same_kind);
    if (it == configured.end()) {
      // A configured host name (not an IP literal) serves both families.
      it = std::find_if(configured.begin(), configured.end(),
                        [&](const TransportInfo& a) { return a.transport == l.transport; });
    }
    TransportInfo a = l;
    if (it != configured.end()) {
      a = *it;
    } else if (a.host == "0.0.0.0" || a.host == "::") {
      // A wildcard listener: advertise the address sofia puts in its Via for this transport.
      if (std::string via = via_host(l.transport, v6); !via.empty()) a.host = via;
    }
    if (std::none_of(advertised.begin(), advertised.end(), same_kind)) advertised.push_back(a);
  }
  return advertised;
}

absl::Status Listeners::Bind(nta_agent_t* agent, const ListenerOptions& options) {
  // nta sends a request through the first listener of the transport, whatever its IP family:
  // with an IPv6 backend, the IPv6 listeners go first.
  std::vector<TransportInfo> listen = options.listen;
  if (options.ipv6_first) {
    std::stable_partition(listen.begin(), listen.end(),
                          [](const TransportInfo& l) { return IsIpv6Literal(l.host); });
  }
  for (const TransportInfo& l : listen) {
    if (absl::Status st =
            AddListener(agent, l, options.tls_certificate_dir, options.limits, options.guard);
        !st.ok())
      return st;
  }
  std::vector<TransportInfo> listening = ListenersOf(agent);
  std::vector<TransportInfo> advertised =
      ElectAdvertised(listening, options.advertise,
                      [agent](Transport t, bool v6) { return ViaHost(agent, t, v6); });
  for (const TransportInfo& a : options.advertise) {
    if (std::none_of(listening.begin(), listening.end(),
                     [&](const TransportInfo& l) { return l.transport == a.transport; })) {
      return absl::InvalidArgumentError(
          absl::StrCat("advertised address ", DebugString(a), " has no listener of its transport"));
    }
  }
  auto log = log::Get("proxy.sofia");
  for (const TransportInfo& l : listening) log->info("listening on {}", DebugString(l));
  for (const TransportInfo& a : advertised) log->info("advertising {}", DebugString(a));
  // Us for a Route entry: every listening and advertised address (a URI without a port names
  // the scheme's default, 5060 or 5061).
  RouteSetConfig ours;
  ours.also_ours = listening;
  ours.also_ours.insert(ours.also_ours.end(), advertised.begin(), advertised.end());
  auto set = RouteSet::Create(ours);
  if (!set.ok()) return set.status();
  std::lock_guard<std::mutex> lock(mu_);
  listening_ = std::move(listening);
  advertised_ = std::move(advertised);
  ours_ = *std::move(set);
  return absl::OkStatus();
}

std::vector<TransportInfo> Listeners::Listening() const {
  std::lock_guard<std::mutex> lock(mu_);
  return listening_;
}

std::vector<TransportInfo> Listeners::Advertised() const {
  std::lock_guard<std::mutex> lock(mu_);
  return advertised_;
}

absl::StatusOr<TransportInfo> Listeners::Advertised(Transport t, bool ipv6) const {
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

}  // namespace pushgate::proxy::sofia
