// Contact masquerading: what the backend registrar sees instead of the phone's Contact, and the
// authenticated way back.
//
// A masqueraded Contact URI keeps the original scheme and user part; its host/port become the
// gateway's advertised address; ALL original URI parameters (push parameters included) are
// dropped; `;transport=tcp|tls` is added when the advertised transport is not UDP (so the backend
// reaches the gateway over the right transport); and one parameter `pgw=<value>` is added. The
// value is base64url (no padding; only URI-parameter-safe characters) of
//   version | flags (insert-domain, doroute) | payload | HMAC-SHA256(secret, ...) truncated to 12
//   bytes
// where payload is the AOR domain in insert-domain mode, else the original transport, host
// (IPv6 safe: length-prefixed, never split on ':') and port, plus the AOR when given, plus the
// device tag when given (DeviceTag: 8 bytes naming the phone, so a call to this contact reaches
// that one phone at its current contact, even after it registered again from elsewhere).
// Its presence is the `doroute` marker: requests from the backend whose request URI carries a
// valid value enter the registrar/fork logic.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/core/contact.h"
#include "proxy/core/sip_uri.h"
#include "proxy/core/transport.h"

namespace pushgate::proxy {

inline constexpr absl::string_view kMasqueradeParam = "pgw";

// What Restore recovered from a masqueraded request URI.
struct MasqueradeTarget {
  bool insert_domain = false;
  std::string aor_domain;  // insert-domain mode: the AOR's domain
  TransportInfo original;  // otherwise: where the phone's contact was (transport, host, port)
  std::string aor;         // the AOR key (AorKey) when Masquerade was given one, else ""
  std::string user;        // user part of the request URI (the phone's contact user)
  std::string device_tag;  // DeviceTag of the phone when Masquerade was given one, else ""
  bool doroute = true;
  // The URI to use as the request URI towards the phone / as the registrar lookup key:
  // insert-domain: "sip:<user>@<aor_domain>"; otherwise
  // "<scheme>:<user>@<host>:<port>[;transport=tcp|tls]" (brackets for IPv6).
  Uri restored;
};

// The 8 bytes naming a device (DeviceKey of binding.h: its +sip.instance, else its push key) in
// a masquerade value: the first bytes of SHA-256 over a context and the key, so the value shows
// the backend neither the instance nor the push token. "" for an empty key.
std::string DeviceTag(absl::string_view device_key);

class MasqueradeCodec final {
 public:
  // `secret`: any non-empty byte string (replicas must share it). `previous_secrets` are still
  // accepted by Restore (for rotation) but never used to sign.
  explicit MasqueradeCodec(const std::string& secret,
                           const std::vector<std::string>& previous_secrets = {});

  // 32 random bytes from the OpenSSL DRBG, hex encoded (64 chars): for "no secret configured".
  static std::string GenerateSecret();

  // The masqueraded URI for `contact`:
  //  - advertised: the gateway's address for the transport used towards the backend;
  //  - insert_domain_aor_domain: set -> insert-domain mode, the value carries this domain;
  //  - original: the phone's transport/host/port to restore (ignored in insert-domain mode);
  //  - aor: optional AOR key (see AorKey) to carry along, so a call can find the bindings;
  //  - device_key: optional DeviceKey of the phone (its DeviceTag is carried, not the key).
  Uri Masquerade(const Contact& contact, const TransportInfo& advertised,
                 const std::optional<std::string>& insert_domain_aor_domain,
                 const TransportInfo& original, absl::string_view aor = {},
                 absl::string_view device_key = {}) const;

  // Undoes Masquerade from a request URI (or a Contact URI echoed by the backend).
  //  - no `pgw` parameter -> NOT_FOUND "no masquerade parameter";
  //  - not base64url / too short to hold a tag -> INVALID_ARGUMENT "masquerade value malformed:
  //  ...";
  //  - tag mismatch (tampered, forged, truncated, other secret) -> PERMISSION_DENIED
  //    "masquerade value failed authentication";
  //  - authenticated but undecodable payload -> INVALID_ARGUMENT.
  // The tag is compared in constant time.
  absl::StatusOr<MasqueradeTarget> Restore(const Uri& request_uri) const;

  // True if the URI carries a `pgw` parameter (not authenticated: call Restore to trust it).
  static bool HasMarker(const Uri& uri);

 private:
  // HMAC-SHA256 with the inner/outer pad states precomputed once per secret (OpenSSL's one-shot
  // HMAC() re-derives them on every call, which doubled the cost). Shared so the codec stays
  // copyable; immutable after construction, so concurrent use from several threads is safe.
  struct KeyState;
  static std::shared_ptr<const KeyState> MakeKeyState(absl::string_view secret);
  std::string Tag(const KeyState& key, absl::string_view signed_bytes) const;

  std::vector<std::shared_ptr<const KeyState>> keys_;  // [0] signs; all verify
};

}  // namespace pushgate::proxy
