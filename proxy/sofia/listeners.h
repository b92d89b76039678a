// The proxy's listeners: binds them on the nta agent (IPv6 ones first toward an IPv6 backend),
// reads back the real ports, and elects the address advertised per transport and IP family (the
// configured one, else the listener's, else for a wildcard listener the address sofia puts in
// its Via). Its listening and advertised addresses are a RouteSet (ours()): "is this URL us" for
// our own Route entries.
//
// Threads: Bind on the loop thread; the readers are thread-safe; ours() is read on the loop
// thread (set once by Bind).
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/core/route_set.h"
#include "proxy/core/transport.h"
#include "proxy/sofia/sofia_util.h"
#include "proxy/sofia/wire_guard.h"

namespace pushgate::proxy::sofia {

// sofia's per-connection limits, in milliseconds (0: none), set on every listener and inherited
// by its TCP/TLS connections (TPTAG_IDLE, TPTAG_TIMEOUT). Every connection also answers a CRLF
// keep-alive ping with a CRLF pong (RFC 5626 4.4.1; TPTAG_PONG2PING), and a phone's registered
// connection is held by its flow (FlowTable) for as long as the registration lasts, so the idle
// timeout only closes connections that carry no registered flow.
struct ConnectionLimits {
  // A connection nobody holds (no registered flow, no transaction) is closed after this long
  // without traffic.
  unsigned idle_ms = 0;
  // A message must arrive completely within this long of its first byte.
  unsigned message_ms = 0;
};

struct ListenerOptions {
  std::vector<TransportInfo> listen;
  std::vector<TransportInfo> advertise;
  std::string tls_certificate_dir;
  bool ipv6_first = false;  // the backend is an IPv6 literal: nta sends through the first listener
  ConnectionLimits limits;
  // Guards the listeners' sockets (wire_guard.h) when set.
  WireGuard* guard = nullptr;
};

// The host sofia puts in its Via for a transport and IP family ("" when none).
using ViaHostFn = std::function<std::string(Transport transport, bool ipv6)>;

// One advertised address per transport and IP family of `listening`: the configured one of the
// same transport and family, else a configured one of the transport (a host name serves both
// families), else the listener's own address; for a wildcard listener ("0.0.0.0", "::") the
// Via host of its transport and family when there is one.
std::vector<TransportInfo> ElectAdvertised(const std::vector<TransportInfo>& listening,
                                           const std::vector<TransportInfo>& configured,
                                           const ViaHostFn& via_host);

class Listeners final {
 public:
  // Adds every listener to `agent`. INVALID_ARGUMENT for a TLS listener without certificates or
  // an advertised address without a listener of its transport; UNAVAILABLE when binding fails.
  absl::Status Bind(nta_agent_t* agent, const ListenerOptions& options);

  std::vector<TransportInfo> Listening() const;
  std::vector<TransportInfo> Advertised() const;
  // The advertised address for `transport`, of the IP family asked when one matches.
  absl::StatusOr<TransportInfo> Advertised(Transport transport, bool ipv6 = false) const;
  // Our listening and advertised addresses as a RouteSet (also_ours only: no Record-Route).
  const RouteSet& ours() const { return ours_; }

 private:
  mutable std::mutex mu_;
  std::vector<TransportInfo> listening_;   // guarded by mu_
  std::vector<TransportInfo> advertised_;  // guarded by mu_
  RouteSet ours_;
};

}  // namespace pushgate::proxy::sofia
