// Contact header values (RFC 3261 section 20.10, RFC 5626 instance/reg-id).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/core/sip_uri.h"

namespace pushgate::proxy {

struct Contact {
  std::string display_name;  // unquoted and unescaped; empty when absent
  Uri uri;
  // Header parameters after the URI, in order, names as sent, values RAW (quoted strings keep
  // their quotes, e.g. {"+sip.instance", "\"<urn:uuid:...>\""}). A flag has value "".
  ParamList params;

  // The `expires` header parameter in seconds, nullopt when absent. Validated by ParseContacts.
  std::optional<uint32_t> expires() const;
  // The `q` parameter (0.0 ... 1.0); 1.0 when absent.
  float q() const;
  // The `+sip.instance` value with quotes removed (e.g. "<urn:uuid:0001-...>"), "" when absent.
  std::string instance() const;
  // The `reg-id` parameter (RFC 5626), nullopt when absent.
  std::optional<uint32_t> reg_id() const;

  // Header parameter by name (case-insensitive), raw value; nullopt when absent.
  std::optional<std::string> param(absl::string_view name) const;
  void SetParam(absl::string_view name, absl::string_view value);  // replace or append
  void RemoveParam(absl::string_view name);

  bool operator==(const Contact&) const = default;
};

struct ContactList {
  bool wildcard = false;  // the header value was "*"
  std::vector<Contact> contacts;
};

// Parses one Contact header value: a comma-separated list of `"Name" <uri>;params`,
// `Name <uri>;params`, `<uri>;params` or bare `uri;params` (in the bare form, every ';' belongs
// to the header, as RFC 3261 says), or the single wildcard "*". Commas inside quoted strings and
// inside <...> are handled. Validates q (0..1, at most 3 decimals), expires (digits, capped at
// 2^32-1) and reg-id (digits, 1..2^31-1).
// Malformed -> INVALID_ARGUMENT with a message usable as a 400 reason phrase, e.g.
// "Contact: invalid q value \"1.5\"", "Contact: unterminated <", "Contact: URI: empty host".
absl::StatusOr<ContactList> ParseContacts(absl::string_view header_value);

// Appends the contacts of `header_value` to `list` (several Contact headers in one message).
// "*" together with other contacts is NOT an error here (CheckRegister reports it).
absl::Status AppendContacts(absl::string_view header_value, ContactList& list);

// Parses exactly one contact (not "*", not a list).
absl::StatusOr<Contact> ParseContact(absl::string_view text);

// `"Name" <uri>;p=v` (always the <...> form; display name quoted when present).
std::string FormatContact(const Contact& contact);
// "*" or the contacts joined with ", ".
std::string FormatContacts(const ContactList& list);

// Removes surrounding double quotes and backslash escapes: "\"a\\\"b\"" -> "a\"b". Unquoted
// text is returned unchanged.
std::string Unquote(absl::string_view value);

}  // namespace pushgate::proxy
