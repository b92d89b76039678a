// Our route set: the URIs by which SIP messages name the gateway itself, and the rules that
// follow from them.
//  - Our own URIs, one per transport (the Record-Route we put on calls); a URI without a port
//    means 5060 for sip and 5061 for sips, everywhere. "Is this us" for a Route entry, a contact
//    (loop prevention) or an address.
//  - Record-Route values for a request received over one transport and sent over another: ours
//    for the outgoing transport on top, ours for the incoming one below it when they differ
//    (RFC 5658 double record-routing). The top one names the phone: ";pgf=<flow token>" for a
//    kept TCP/TLS connection, else ";pga=<signed address>" (signed with the masquerade codec, so
//    a forged Route cannot send requests anywhere else).
//  - Route handling: how many of a request's top Route entries are ours (1, or 2 for an RFC 5658
//    pair), and the phone they name.
//  - The in-dialog verdict (DecideInDialog): which requests routed by us may go on, so the
//    gateway is not an open relay.
//
// Pure: no sofia, no sockets, no clock. A RouteSet is immutable once built; any thread may read
// it. Values go in and out as core Uri / TransportInfo values and URI text.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "proxy/core/binding.h"
#include "proxy/core/domain_policy.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/sip_uri.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy {

// Record-Route parameter carrying the phone's flow token.
inline constexpr absl::string_view kFlowParam = "pgf";
// Record-Route parameter carrying the phone's signed address (transport, host, port).
inline constexpr absl::string_view kPhoneParam = "pga";

struct RouteSetConfig {
  // Our default Record-Route URI ("sip:192.0.2.1:5060", AddressUri's kRecordRoute form, no
  // ";lr"). Empty: no route set (nothing is ours, no Record-Route).
  std::string record_route;
  // Our Record-Route URI per transport. A transport missing here gets record_route's host with
  // the port of the listener of that transport in `listeners` (AddressUri, kRecordRoute form).
  std::map<Transport, std::string> by_transport;
  std::vector<TransportInfo> listeners;
  // Signs the phone's address in our Record-Route (the masquerade secret). Empty: no address
  // carried (in-dialog requests go to the request URI).
  std::string route_secret;
  // More addresses that are us without being Record-Route values (the bound and advertised
  // addresses, e.g. for a phone's Route naming the gateway as its outbound proxy): IsOwn only.
  std::vector<TransportInfo> also_ours;
};

class RouteSet final {
 public:
  // No route set: nothing is ours, no Record-Route.
  RouteSet() = default;
  // INVALID_ARGUMENT naming the URI when one of the configured URIs does not parse.
  static absl::StatusOr<RouteSet> Create(const RouteSetConfig& config);

  // Nothing is ours.
  bool empty() const { return own_.empty(); }
  // True when a Record-Route is configured (RecordRoutes gives values).
  bool record_routes() const { return !record_route_.empty(); }
  // Every own URI: the default one first, then one per transport, then `also_ours`.
  const std::vector<Uri>& own() const { return own_; }

  // True when host and port name one of our URIs (host case-insensitive, brackets allowed; the
  // port of either side defaults by its scheme).
  bool IsOwnAddress(bool sips, absl::string_view host, std::optional<uint16_t> port) const;
  bool IsOwn(const Uri& uri) const;

  // How many of `routes` (a request's top Route entries, top first; two are enough) are ours:
  // 0 when the top one is not; 2 for an RFC 5658 pair (two consecutive own entries naming
  // different transports or addresses); else 1 (two identical entries are a spiral through us:
  // one hop at a time).
  int OwnRoutes(absl::Span<const Uri> routes) const;

  // The flow token named by our Route entries (`own_routes`: the ones OwnRoutes counted), or
  // nullopt.
  std::optional<std::string> NamedFlow(absl::Span<const Uri> own_routes) const;
  // The phone's address signed into our Route entries: nullopt when none carries one (or no
  // route secret is configured); PERMISSION_DENIED / INVALID_ARGUMENT when the value is forged
  // or malformed.
  absl::StatusOr<std::optional<TransportInfo>> NamedPhoneAddress(
      absl::Span<const Uri> own_routes) const;

  // The Record-Route URIs (top first, without ";lr") for a request received over `in` and sent
  // over `out`: ours for `out` naming the phone (by `flow_token` when not empty, else by its
  // signed address `phone` when given), then ours for `in` when it differs. Empty without a
  // Record-Route configured.
  std::vector<std::string> RecordRoutes(std::optional<Transport> in, std::optional<Transport> out,
                                        absl::string_view flow_token,
                                        const std::optional<TransportInfo>& phone) const;

  // Loop prevention: the binding would send a call to ourselves (its contact, or the address
  // its REGISTER came from when it has no kept connection, names us).
  bool PointsAtUs(const Binding& binding) const;

 private:
  const std::string& UriFor(std::optional<Transport> t) const;
  // ";pgf=<flow>" or ";pga=<signed address>", or "".
  std::string PhoneParams(absl::string_view flow_token,
                          const std::optional<TransportInfo>& phone) const;

  std::string record_route_;
  std::map<Transport, std::string> by_transport_;
  std::vector<Uri> own_;
  std::optional<MasqueradeCodec> codec_;
};

// True when `address` is in the trusted backends list: an entry is an IP ("192.0.2.1",
// "2001:db8::1" or "[2001:db8::1]") or an IP with a port ("192.0.2.1:5060", "[2001:db8::1]:5060").
bool IsTrustedBackend(const std::vector<std::string>& trusted, const TransportInfo& address);

// The trusted backends list the proxy checks against: `configured` (sip.trusted_backends), plus
// the backend URI's own address when it is an IP literal (requests the backend sends us come
// from it): with its port for UDP, where the backend sends from its listening port, else the
// host alone.
std::vector<std::string> TrustedBackends(const std::optional<Uri>& backend,
                                         std::vector<std::string> configured);

// What the proxy knows of an in-dialog request whose top Route is ours.
struct InDialogFacts {
  std::optional<TransportInfo> source;  // where it came from (nullopt: unknown)
  bool names_phone = false;  // our Route names a phone: a live flow or a valid signed address
  // The next hop: the Route entry after ours, else the request URI. Nullopt: unparseable.
  std::optional<Uri> next_hop;
};

// The proxy's relay scope (from its configuration).
struct InDialogPolicy {
  std::optional<Uri> backend;  // the configured backend, if any
  std::vector<std::string> trusted_backends;
  DomainPolicy domains = DomainPolicy({});
};

enum class InDialogVerdict : uint8_t {
  kFromBackend,       // sent by a trusted backend
  kPhone,             // toward the phone our Route names (or from it)
  kToBackend,         // the next hop is the configured backend
  kToTrustedBackend,  // the next hop is a trusted backend address
  kToAllowedDomain,   // no backend configured, the next hop is an explicitly allowed domain
  kDenied,            // anything else: we are not an open relay
};

// In-dialog requests routed by us go on only from a trusted backend, when our Route names the
// phone, or toward the backend (never to an arbitrary host). Rules in that order.
InDialogVerdict DecideInDialog(const InDialogFacts& facts, const InDialogPolicy& policy);

}  // namespace pushgate::proxy
