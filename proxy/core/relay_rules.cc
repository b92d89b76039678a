#include "proxy/core/relay_rules.h"

#include <algorithm>

#include "absl/strings/match.h"

namespace pushgate::proxy {

uint32_t ForwardedMaxForwards(std::optional<uint32_t> received) {
  const uint32_t hops = std::min<uint32_t>(received.value_or(70), 70);
  return hops == 0 ? 0 : hops - 1;
}

bool TooManyHops(std::optional<uint32_t> max_forwards, bool is_ack) {
  return !is_ack && max_forwards == 0u;
}

bool BranchReachable(const Binding& binding, bool flow_live) {
  return binding.flow_token.empty() || flow_live;
}

BranchHop BranchHopFor(const Binding& binding, bool flow_live,
                       std::optional<Transport> flow_transport) {
  BranchHop hop;
  if (!binding.flow_token.empty() && flow_live) {
    hop.via_flow = true;
    hop.transport = flow_transport;
    return hop;
  }
  if (!binding.received.host.empty()) hop.phone = binding.received;
  if (!binding.received.host.empty() && binding.received.port != 0) {
    hop.next_hop = AddressUri(binding.received);
    hop.transport = binding.received.transport;
  } else if (auto t = UriTransport(binding.contact); t.ok()) {
    hop.transport = *t;
  }
  return hop;
}

std::string InDialogNextHop(const std::string& loose_target, bool via_flow,
                            const std::optional<TransportInfo>& phone,
                            const std::optional<TransportInfo>& source) {
  if (via_flow || !phone) return loose_target;
  const bool from_phone =
      source && source->port == phone->port && absl::EqualsIgnoreCase(source->host, phone->host);
  return from_phone ? loose_target : AddressUri(*phone);
}

ResponseRelay RelayResponse(int status, bool internal) {
  ResponseRelay r;
  r.status = status;
  if (status <= 100) return r;
  r.done = status >= 200;
  if (internal) {
    r.action = ResponseRelay::Action::kAnswer;
    r.outcome = status == 408 ? Outcome::kBackendTimeout : Outcome::kNextHopNoAnswer;
    r.status = StatusOf(r.outcome);
  } else {
    r.action = ResponseRelay::Action::kRelay;
  }
  return r;
}

ResponseRelay ForkResponse(int status, bool have_response, bool final_sent) {
  ResponseRelay r;
  r.status = status;
  r.done = status >= 200;
  if (status >= 300 && final_sent) return r;  // one non-2xx final only
  if (have_response) {
    r.action = ResponseRelay::Action::kRelay;
  } else {
    r.action = ResponseRelay::Action::kAnswer;
    r.outcome = status == 408 ? Outcome::kCallTimeout : Outcome::kBranchNoAnswer;
    r.status = StatusOf(r.outcome);
  }
  return r;
}

}  // namespace pushgate::proxy
