#include "proxy/core/request_route.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace pushgate::proxy {
namespace {

RequestRoute Reject(Outcome outcome) { return {Route::kReject, outcome, false}; }
RequestRoute Go(Route route, bool record_route = false) {
  return {route, Outcome::kInternalError, record_route};
}

// Step 0: our Record-Route on top, and ACKs outside a dialog of ours.
std::optional<RequestRoute> DialogStep(const RequestFacts& f) {
  if (f.has_call_handler && f.our_route) {
    if (f.in_dialog_allowed) return Go(Route::kInDialog);
    // Anyone can put our Record-Route in a Route header: without the verdict we would relay
    // any request to any host.
    if (f.method == Method::kAck) return RequestRoute{Route::kDrop, Outcome::kRelayDenied, false};
    return Reject(Outcome::kRelayDenied);
  }
  if (f.method == Method::kAck) {
    // The ACK of a 2xx relayed earlier: end to end, like its INVITE (a phone's only: the
    // backend's own ACKs have nowhere to go).
    return Go(f.has_backend && !f.from_trusted_backend ? Route::kForwardAck : Route::kAbsorbAck);
  }
  return std::nullopt;
}

// Steps 3 to 6: requests other than REGISTER.
RequestRoute OtherStep(const RequestFacts& f) {
  if (f.method == Method::kCancel) return Reject(Outcome::kNoTransaction);
  if (!f.request_uri_valid) return Reject(Outcome::kBadRequest);
  if (f.masquerade_marker) {
    if (!f.masquerade_valid) return Reject(Outcome::kBadMasquerade);
    // Routing calls to the phones (fork, push, fork late) belongs to the call handler.
    return f.has_call_handler ? Go(Route::kToAor) : Reject(Outcome::kNotRouted);
  }
  if (f.from_trusted_backend) return Reject(Outcome::kBackendUnknownTarget);
  const bool record_route = f.has_call_handler && f.method == Method::kInvite;
  if (f.has_backend) return Go(Route::kRelayToBackend, record_route);
  if (f.relay_domain_allowed) return Go(Route::kRelayToRequestUri, record_route);
  return Reject(Outcome::kRelayDenied);
}

}  // namespace

Method MethodOf(absl::string_view name) {
  if (name == "REGISTER") return Method::kRegister;
  if (name == "INVITE") return Method::kInvite;
  if (name == "ACK") return Method::kAck;
  if (name == "CANCEL") return Method::kCancel;
  return Method::kOther;
}

RequestRoute Classify(const RequestFacts& f) {
  if (!f.parsed) return Reject(Outcome::kBadRequest);
  if (std::optional<RequestRoute> dialog = DialogStep(f)) return *dialog;
  if (f.max_forwards && *f.max_forwards == 0) return Reject(Outcome::kTooManyHops);
  if (f.draining) return Reject(Outcome::kDraining);
  if (f.method == Method::kRegister) return Go(Route::kRegister);
  return OtherStep(f);
}

Transport NextHopTransport(const std::optional<Uri>& backend, const Uri& request_uri) {
  auto t = UriTransport(backend ? *backend : request_uri);
  return t.ok() ? *t : Transport::kUdp;
}

std::string DebugString(const RequestRoute& r) {
  switch (r.route) {
    case Route::kInDialog:
      return "in_dialog";
    case Route::kForwardAck:
      return "forward_ack";
    case Route::kAbsorbAck:
      return "absorb_ack";
    case Route::kReject:
      return absl::StrCat("reject(", StatusOf(r.outcome), " ", LabelOf(r.outcome), ")");
    case Route::kDrop:
      return absl::StrCat("drop(", LabelOf(r.outcome), ")");
    case Route::kRegister:
      return "register";
    case Route::kToAor:
      return "to_aor";
    case Route::kRelayToBackend:
      return absl::StrCat("relay_to_backend", r.record_route ? "+rr" : "");
    case Route::kRelayToRequestUri:
      return absl::StrCat("relay_to_request_uri", r.record_route ? "+rr" : "");
  }
  return "?";
}

}  // namespace pushgate::proxy
