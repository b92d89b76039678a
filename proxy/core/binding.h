// A registrar binding: one phone contact registered for an AOR, as kept by the gateway.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proxy/core/push_params.h"
#include "proxy/core/sip_uri.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy {

struct Binding {
  std::string aor;          // AorKey of the To URI
  Uri contact;              // the phone's ORIGINAL contact URI (push parameters included)
  std::string instance_id;  // +sip.instance without quotes ("<urn:uuid:...>"), "" if none
  uint32_t reg_id = 0;      // RFC 5626 reg-id, 0 if none
  float q = 1.0f;
  std::optional<PushParams> push;  // parsed from `contact` when it carries push parameters
  TransportInfo received;          // source address/transport the REGISTER came from
  std::string flow_token;  // opaque connection id given by the adapter ("" = none, e.g. UDP)
  absl::Time expires_at = absl::InfinitePast();
  std::string call_id;
  uint32_t cseq = 0;
  absl::Time updated_at = absl::InfinitePast();

  bool expired(absl::Time now) const { return expires_at <= now; }
  // PushKey(*push), or "" when there is no push or it is a capability query.
  std::string push_key() const;

  bool operator==(const Binding&) const = default;
};

// What names the phone behind a binding across re-registrations (its contact address may
// change): "instance:" + its +sip.instance, else "push:" + its push key, else "" (only its
// contact address names it).
std::string DeviceKey(const Binding& binding);

// Compact, versioned binary form of an AOR's bindings (used by the in-memory store to keep RSS
// low, and usable as a Redis value). The `aor` field is NOT stored (it is the key): Decode
// fills it from its argument. `push` is stored only when it differs from
// ParsePushParams(contact) (normally it is recomputed on decode).
std::string EncodeBindings(const std::vector<Binding>& bindings);
// INVALID_ARGUMENT "binding record: ..." on a corrupt or unknown-version record.
absl::StatusOr<std::vector<Binding>> DecodeBindings(absl::string_view record,
                                                    absl::string_view aor);

// The earliest expires_at of `bindings` (InfiniteFuture() when empty).
absl::Time EarliestExpiry(const std::vector<Binding>& bindings);

// The bindings of `aor` as JSON for the admin endpoint (operators checking why a phone does not
// ring): {"aor", "bindings": [{"contact" (push parameters removed), "instance", "reg_id", "q",
// "received", "flow" (true when a TCP/TLS connection is kept), "expires_in_s", "call_id",
// "cseq", "push": {"provider", "param", "token" (redacted), "voip"}}]}.
std::string BindingsJson(absl::string_view aor, const std::vector<Binding>& bindings,
                         absl::Time now);

// One line for logs: aor, contact host (no push token), instance, expiry. Tokens are redacted.
std::string DebugString(const Binding& binding);

}  // namespace pushgate::proxy
