#include "proxy/core/route_set.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "proxy/core/contact.h"

namespace pushgate::proxy {
namespace {

// The signed address travels as a masquerade value in a URI of no other use.
constexpr char kCarrierHost[] = "gateway.invalid";

absl::StatusOr<Uri> ParseOwn(absl::string_view what, absl::string_view text) {
  auto uri = ParseUri(text);
  if (!uri.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("record-route for ", what, " \"", text, "\": ", uri.status().message()));
  }
  return uri;
}

bool SameAddress(const Uri& own, bool sips, absl::string_view host, std::optional<uint16_t> port) {
  return PortOrDefault(own) == port.value_or(sips ? 5061 : 5060) &&
         absl::EqualsIgnoreCase(own.host, host);
}

// `entry` is the host ("192.0.2.1", "2001:db8::1", "[2001:db8::1]") or host and port
// ("192.0.2.1:5060", "[2001:db8::1]:5060") of `address`. Compared in place: no allocation on the
// request path.
bool NamesAddress(absl::string_view entry, const TransportInfo& address) {
  if (entry == address.host) return true;
  const bool v6 = address.host.find(':') != std::string::npos;
  if (v6 && !(absl::ConsumePrefix(&entry, "[") && absl::ConsumePrefix(&entry, address.host) &&
              absl::ConsumePrefix(&entry, "]"))) {
    return false;
  }
  if (!v6 && !absl::ConsumePrefix(&entry, address.host)) return false;
  if (entry.empty()) return v6;  // "[2001:db8::1]"
  std::array<char, 8> port{};
  auto [end, ec] = std::to_chars(port.data(), port.data() + port.size(), address.port);
  return ec == std::errc() && absl::ConsumePrefix(&entry, ":") &&
         entry == absl::string_view(port.data(), static_cast<size_t>(end - port.data()));
}

}  // namespace

absl::StatusOr<RouteSet> RouteSet::Create(const RouteSetConfig& config) {
  RouteSet set;
  if (!config.route_secret.empty()) set.codec_.emplace(config.route_secret);
  if (!config.record_route.empty()) {
    auto primary = ParseOwn("the default", config.record_route);
    if (!primary.ok()) return primary.status();
    set.record_route_ = config.record_route;
    set.by_transport_ = config.by_transport;
    if (auto t = UriTransport(*primary); t.ok()) set.by_transport_.emplace(*t, config.record_route);
    // Transports without a configured URI: our host, the port of our listener.
    for (const TransportInfo& listener : config.listeners) {
      if (set.by_transport_.count(listener.transport) != 0) continue;
      set.by_transport_[listener.transport] = AddressUri(
          TransportInfo{listener.transport, primary->host, listener.port}, UriForm::kRecordRoute);
    }
    set.own_.push_back(*std::move(primary));
    for (const auto& [t, text] : set.by_transport_) {
      auto uri = ParseOwn(TransportName(t), text);
      if (!uri.ok()) return uri.status();
      set.own_.push_back(*std::move(uri));
    }
  }
  for (const TransportInfo& address : config.also_ours) {
    Uri uri;
    uri.scheme = address.transport == Transport::kTls ? "sips" : "sip";
    uri.host = address.host;
    uri.port = address.port;
    set.own_.push_back(std::move(uri));
  }
  return set;
}

bool RouteSet::IsOwnAddress(bool sips, absl::string_view host, std::optional<uint16_t> port) const {
  host = BareHost(host);
  return std::any_of(own_.begin(), own_.end(),
                     [&](const Uri& own) { return SameAddress(own, sips, host, port); });
}

bool RouteSet::IsOwn(const Uri& uri) const {
  return IsOwnAddress(uri.scheme == "sips", uri.host, uri.port);
}

int RouteSet::OwnRoutes(absl::Span<const Uri> routes) const {
  if (routes.empty() || !IsOwn(routes[0])) return 0;
  if (routes.size() < 2 || !IsOwn(routes[1])) return 1;
  const Uri& a = routes[0];
  const Uri& b = routes[1];
  auto ta = UriTransport(a);
  auto tb = UriTransport(b);
  bool differ = (ta.ok() && tb.ok() && *ta != *tb) || !absl::EqualsIgnoreCase(a.host, b.host) ||
                PortOrDefault(a) != PortOrDefault(b);
  return differ ? 2 : 1;
}

std::optional<std::string> RouteSet::NamedFlow(absl::Span<const Uri> own_routes) const {
  for (const Uri& route : own_routes) {
    std::optional<std::string> token = Param(route, kFlowParam);
    if (token && !token->empty()) return token;
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<TransportInfo>> RouteSet::NamedPhoneAddress(
    absl::Span<const Uri> own_routes) const {
  if (!codec_) return std::nullopt;
  for (const Uri& route : own_routes) {
    std::optional<std::string> value = Param(route, kPhoneParam);
    if (!value || value->empty()) continue;
    Uri carrier;
    carrier.host = kCarrierHost;
    SetParam(carrier, kMasqueradeParam, *value);
    auto target = codec_->Restore(carrier);
    if (!target.ok()) return target.status();
    if (target->insert_domain) return absl::InvalidArgumentError("no address");
    return target->original;
  }
  return std::nullopt;
}

std::string RouteSet::PhoneParams(absl::string_view flow_token,
                                  const std::optional<TransportInfo>& phone) const {
  if (!flow_token.empty()) return absl::StrCat(";", kFlowParam, "=", flow_token);
  if (!phone || !codec_ || phone->host.empty() || phone->port == 0) return "";
  // The masquerade value of the address alone (the URI it sits in is thrown away).
  Contact contact;
  contact.uri.host = phone->host;
  Uri signed_uri = codec_->Masquerade(contact, TransportInfo{Transport::kUdp, kCarrierHost, 5060},
                                      std::nullopt, *phone);
  std::optional<std::string> value = Param(signed_uri, kMasqueradeParam);
  return value ? absl::StrCat(";", kPhoneParam, "=", *value) : "";
}

const std::string& RouteSet::UriFor(std::optional<Transport> t) const {
  auto it = t ? by_transport_.find(*t) : by_transport_.end();
  return it != by_transport_.end() ? it->second : record_route_;
}

std::vector<std::string> RouteSet::RecordRoutes(std::optional<Transport> in,
                                                std::optional<Transport> out,
                                                absl::string_view flow_token,
                                                const std::optional<TransportInfo>& phone) const {
  if (!record_routes()) return {};
  const std::string& out_uri = UriFor(out);
  const std::string& in_uri = UriFor(in);
  std::vector<std::string> routes;
  routes.reserve(2);
  routes.push_back(absl::StrCat(out_uri, PhoneParams(flow_token, phone)));
  if (in_uri != out_uri) routes.push_back(in_uri);
  return routes;
}

bool RouteSet::PointsAtUs(const Binding& binding) const {
  if (binding.flow_token.empty() && !binding.received.host.empty() && binding.received.port != 0) {
    return IsOwnAddress(false, binding.received.host, binding.received.port);
  }
  return IsOwn(binding.contact);
}

bool IsTrustedBackend(const std::vector<std::string>& trusted, const TransportInfo& address) {
  return std::any_of(trusted.begin(), trusted.end(),
                     [&](const std::string& entry) { return NamesAddress(entry, address); });
}

std::vector<std::string> TrustedBackends(const std::optional<Uri>& backend,
                                         std::vector<std::string> configured) {
  if (!backend) return configured;
  const bool ip_literal = IsIpv6Literal(backend->host) ||
                          std::all_of(backend->host.begin(), backend->host.end(),
                                      [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
  if (!ip_literal) return configured;
  auto t = UriTransport(*backend);
  if (t.ok() && *t == Transport::kUdp) {
    configured.push_back(absl::StrCat(UriHost(backend->host), ":", PortOrDefault(*backend)));
  } else {
    configured.push_back(backend->host);
  }
  return configured;
}

InDialogVerdict DecideInDialog(const InDialogFacts& facts, const InDialogPolicy& policy) {
  if (facts.source && IsTrustedBackend(policy.trusted_backends, *facts.source)) {
    return InDialogVerdict::kFromBackend;
  }
  if (facts.names_phone) return InDialogVerdict::kPhone;
  if (!facts.next_hop) return InDialogVerdict::kDenied;
  const Uri& next = *facts.next_hop;
  const uint16_t port = PortOrDefault(next);
  if (policy.backend && absl::EqualsIgnoreCase(next.host, policy.backend->host) &&
      port == PortOrDefault(*policy.backend)) {
    return InDialogVerdict::kToBackend;
  }
  // The backend's own Record-Route may name it by address: the trusted backends list.
  if (IsTrustedBackend(policy.trusted_backends, TransportInfo{Transport::kUdp, next.host, port})) {
    return InDialogVerdict::kToTrustedBackend;
  }
  if (!policy.backend && !policy.domains.allow_all() && policy.domains.Allowed(next.host)) {
    return InDialogVerdict::kToAllowedDomain;
  }
  return InDialogVerdict::kDenied;
}

}  // namespace pushgate::proxy
