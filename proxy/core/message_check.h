// Validation of every incoming SIP message, once, before any handler (issue 13). The sofia
// adapter (proxy/sofia/message_facts) extracts plain facts from the parsed message; the rules
// live here.
//
// Rules, in order (the first failure decides):
//   1. A header that may appear once (sofia's single-instance headers: Max-Forwards, CSeq,
//      Call-ID, From, To, Content-Length, Expires, Content-Type, User-Agent, ...) present more
//      than once -> "Duplicate <Name>". Sofia cannot serialize such a message (an assertion in
//      msg_serialize), and a relay must never carry two of them.
//   2. A mandatory header missing (RFC 3261 8.1.1: Via, From, To, Call-ID, CSeq)
//      -> "Missing <Name>". Max-Forwards is not required: RFC 3261 16.3 step 3 lets a proxy pass
//      a request without one (the relayed copy gets none either; the next hop decides).
//   3. A number outside 0..2^32-1 or not a number (Max-Forwards, Expires, a Contact's
//      ;expires=, the CSeq sequence, Content-Length) -> "Bad <Name>". RFC 3261 says values
//      beyond 2^32-1 are not valid (20.16 CSeq, 20.19 Expires "up to 2^32-1"); clamping
//      Expires would be legal too but would hide a broken client, and reading it modulo 2^32
//      turned 4294967296 into 0, a de-registration. We reject so the sender learns.
//   4. A header sofia could not parse among the ones we check (a malformed Max-Forwards,
//      CSeq, ...) -> "Bad <Name>". Other malformed headers are relayed as they are
//      (leniency; the register relay has its own rule for Contact).
//   5. Over a datagram transport, Content-Length larger than the body -> "Bad Content-Length"
//      (RFC 3261 18.3: the message MUST be discarded or rejected; we answer 400).
//
// A request that fails is answered 400 with the returned reason (Outcome::kInvalidMessage);
// a response or an ACK that fails is dropped and counted. Max-Forwards 0 is valid here and
// answered 483 by Classify.
//
// Pure: no sofia, no sockets. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace pushgate::proxy {

struct HeaderCount {
  std::string name;        // the full header name ("Max-Forwards")
  int count = 0;           // instances present, parsed or not
  bool single = false;     // at most one allowed
  bool malformed = false;  // at least one instance failed to parse
};

// A numeric value as received, e.g. {"Expires", "4294967296"} or {"Contact expires", "-1"}.
struct RawNumber {
  std::string name;
  std::string value;  // trimmed text; for CSeq the sequence number only
};

struct MessageFacts {
  bool request = true;  // false: a response (no request line checks apply)
  std::vector<HeaderCount> headers;
  std::vector<RawNumber> numbers;
  std::optional<uint64_t> content_length;  // the parsed Content-Length, if any
  uint64_t body_size = 0;
  bool datagram = false;  // arrived over UDP
};

struct CheckResult {
  bool ok = true;
  std::string reason;  // "Duplicate Max-Forwards", "Bad Expires", "Missing Call-ID"

  static CheckResult Ok() { return {}; }
  static CheckResult Fail(std::string reason) { return {false, std::move(reason)}; }
};

// The headers whose absence rule 2 refuses, and whose malformation rule 4 refuses.
bool IsMandatoryHeader(absl::string_view name);
bool IsCheckedHeader(absl::string_view name);

// A decimal in 0..2^32-1: digits only (surrounding blanks allowed), at least one.
std::optional<uint32_t> ParseUint32(absl::string_view text);

CheckResult CheckMessage(const MessageFacts& facts);

}  // namespace pushgate::proxy
