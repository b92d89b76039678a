// Every SIP answer the proxy makes itself (as opposed to relaying a response), in one table:
// each Outcome has its status code, reason phrase, Retry-After and metric label, as OpenSIPS's
// rerrno table and Kamailio's reg_send_reply do. Reply sites name an outcome; nothing else in
// the proxy writes a status code or a Retry-After value.
//
// Retry-After comes from RetryAfterConfig (SipProxyOptions), never from literals at reply sites:
//   kBusy     - the gateway itself is overloaded or stopping (draining, too many pending
//               REGISTERs, the next hop could not be asked);
//   kStore    - the binding store failed (store.retry_after in the configuration, or the
//               store's own hint when later);
//   kConflict - the AOR kept changing under a registration (retry almost at once).
//
// Pure: no sofia. Thread-safe (the table is constant).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pushgate::proxy {

enum class Outcome : uint8_t {
  // The request itself.
  kBadRequest,     // 400; the reason is the parser's message when there is one
  kTooManyHops,    // 483, Max-Forwards reached 0
  kNoTransaction,  // 481, a CANCEL that matched no transaction
  kDraining,       // 503 + Retry-After (busy): the gateway is stopping
  kShuttingDown,   // 503: transactions still open when the proxy is destroyed
  kInternalError,  // 500: a message could not be copied or built
  // REGISTER.
  kDomainNotServed,       // 403
  kContactRules,          // 400: "Contact: *" misuse, malformed push parameters (CheckRegister)
  kTooManyContacts,       // 403 (CheckRegister)
  kIntervalTooBrief,      // 423 + Min-Expires (CheckRegister)
  kNoTransport,           // 503: no listener of the transport toward the registrar
  kTooManyPending,        // 503 + Retry-After (busy): evicted from the pending REGISTERs
  kRegistrarUnreachable,  // 503 + Retry-After (busy): the REGISTER could not be sent
  kStoreConflict,         // 503 + Retry-After (conflict)
  kStoreUnavailable,      // 503 + Retry-After (store)
  // Routing and relay of other requests.
  kRelayDenied,           // 403: we are not an open relay
  kBadMasquerade,         // 403: forged or altered masquerade value
  kNotRouted,             // 480: valid masquerade value, no call handler installed
  kBackendUnknownTarget,  // 404: from the backend, without a masquerade value
  kBackendUnreachable,    // 503 + Retry-After (busy): the request could not be sent
  kBackendTimeout,        // 408: nta's own answer, the next hop never answered
  kBackendNoAnswer,       // 503: nta's own answer, the next hop could not be reached
  // Calls (the call handler's answers to the caller, from the fork's decisions).
  kNoBinding,           // 404: the AOR has no binding
  kCallTimeout,         // 408: no phone answered in time
  kCallUnavailable,     // 480: every branch failed
  kCallTerminated,      // 487: the caller cancelled
  kDeviceError,         // 500: the phones answered with server errors
  kBranchNoAnswer,      // 500: nta's own answer on a branch (never relayed as 503)
  kNextHopUnreachable,  // 503: an in-dialog request could not be sent
  kPushSent,            // 110 (provisional): the callee's phone was woken by a push
  kNextHopNoAnswer,     // 503: nta's own answer on an in-dialog relay (the next hop never did)
  // Validation (message_check.h).
  kInvalidMessage,  // 400 whose reason names the header ("Duplicate Max-Forwards")
  kRelayTimerC,     // 408: a relayed INVITE got no final answer within timer C (cancelled)
  kRateLimited,     // 503 + Retry-After (busy): the source is over its request budget
  kPushFailed,      // 480 + Reason: no phone could be woken (every push failed, none sent)
  // Calls, continued.
  kMergedRequest,  // 482: the backend's second request of one call to the same phone
};

enum class RetryAfter : uint8_t { kNone, kBusy, kStore, kConflict };

struct RetryAfterConfig {
  absl::Duration busy = absl::Seconds(5);
  absl::Duration store = absl::Seconds(5);
  absl::Duration conflict = absl::Seconds(1);
  // The store's own estimate of when it will be back (RedisBindingStore::RetryAfterHint: the
  // next reconnection attempt), called on the thread answering; kStore's Retry-After is the
  // larger of `store` and this. Null: `store` alone.
  std::function<absl::Duration()> store_hint;
};

struct OutcomeInfo {
  int status;
  absl::string_view reason;  // a string literal of the table (NUL-terminated)
  RetryAfter retry_after;
  // The metric label (registrations by result, rejected requests by reason).
  absl::string_view label;
};

// The table row of `outcome`.
const OutcomeInfo& Describe(Outcome outcome);
inline int StatusOf(Outcome outcome) { return Describe(outcome).status; }
inline absl::string_view LabelOf(Outcome outcome) { return Describe(outcome).label; }

// The Retry-After of `outcome` (zero when it has none).
absl::Duration RetryDelayOf(Outcome outcome, const RetryAfterConfig& retry);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// What goes on the wire for an outcome.
struct SipAnswer {
  int status = 500;
  std::string reason;
  HeaderList headers;  // Retry-After first when the outcome has one, then `extra`
};

// The answer for `outcome`: the table's reason unless `reason` is given (a parser's message),
// Retry-After in whole seconds from `retry`, then `extra` headers (e.g. Min-Expires).
SipAnswer AnswerFor(Outcome outcome, const RetryAfterConfig& retry, absl::string_view reason = {},
                    const HeaderList& extra = {});

}  // namespace pushgate::proxy
