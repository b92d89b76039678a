#include "proxy/core/outcomes.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"

namespace pushgate::proxy {
namespace {

struct Row {
  Outcome outcome;
  OutcomeInfo info;
};

// In enum order (checked by the unit test and below).
constexpr std::array<Row, 36> kTable = {{
    {Outcome::kBadRequest, {400, "Bad Request", RetryAfter::kNone, "bad_request"}},
    {Outcome::kTooManyHops, {483, "Too Many Hops", RetryAfter::kNone, "too_many_hops"}},
    {Outcome::kNoTransaction,
     {481, "Call/Transaction Does Not Exist", RetryAfter::kNone, "no_transaction"}},
    {Outcome::kDraining, {503, "Service Unavailable", RetryAfter::kBusy, "draining"}},
    {Outcome::kShuttingDown, {503, "Service Unavailable", RetryAfter::kNone, "shutting_down"}},
    {Outcome::kInternalError, {500, "Internal Server Error", RetryAfter::kNone, "internal_error"}},
    {Outcome::kDomainNotServed, {403, "Domain not served", RetryAfter::kNone, "domain_refused"}},
    {Outcome::kContactRules, {400, "Bad Request", RetryAfter::kNone, "rejected"}},
    {Outcome::kTooManyContacts, {403, "Too many contacts", RetryAfter::kNone, "rejected"}},
    {Outcome::kIntervalTooBrief,
     {423, "Interval Too Brief", RetryAfter::kNone, "interval_too_brief"}},
    {Outcome::kNoTransport,
     {503, "No transport toward the registrar", RetryAfter::kNone, "no_transport"}},
    {Outcome::kTooManyPending,
     {503, "Too many pending registrations", RetryAfter::kBusy, "too_many_pending"}},
    {Outcome::kRegistrarUnreachable,
     {503, "Registrar unreachable", RetryAfter::kBusy, "forward_failed"}},
    {Outcome::kStoreConflict, {503, "Registrar busy", RetryAfter::kConflict, "store_conflict"}},
    {Outcome::kStoreUnavailable,
     {503, "Registrar store unavailable", RetryAfter::kStore, "store_error"}},
    {Outcome::kRelayDenied, {403, "Relaying denied", RetryAfter::kNone, "relay_denied"}},
    {Outcome::kBadMasquerade,
     {403, "Invalid masquerade value", RetryAfter::kNone, "bad_masquerade"}},
    {Outcome::kNotRouted, {480, "Temporarily Unavailable", RetryAfter::kNone, "not_routed"}},
    {Outcome::kBackendUnknownTarget,
     {404, "Not Found", RetryAfter::kNone, "backend_unknown_target"}},
    {Outcome::kBackendUnreachable,
     {503, "Backend unreachable", RetryAfter::kBusy, "backend_unreachable"}},
    {Outcome::kBackendTimeout, {408, "Request Timeout", RetryAfter::kNone, "backend_timeout"}},
    {Outcome::kBackendNoAnswer,
     {503, "Service Unavailable", RetryAfter::kNone, "backend_unreachable"}},
    {Outcome::kNoBinding, {404, "Not Found", RetryAfter::kNone, "no_binding"}},
    {Outcome::kCallTimeout, {408, "Request Timeout", RetryAfter::kNone, "call_timeout"}},
    {Outcome::kCallUnavailable,
     {480, "Temporarily Unavailable", RetryAfter::kNone, "call_unavailable"}},
    {Outcome::kCallTerminated, {487, "Request Terminated", RetryAfter::kNone, "call_terminated"}},
    {Outcome::kDeviceError,
     {500, "Service Unavailable at the device", RetryAfter::kNone, "device_error"}},
    {Outcome::kBranchNoAnswer, {500, "No answer", RetryAfter::kNone, "branch_no_answer"}},
    {Outcome::kNextHopUnreachable,
     {503, "Next hop unreachable", RetryAfter::kNone, "next_hop_unreachable"}},
    {Outcome::kPushSent, {110, "Push sent", RetryAfter::kNone, "push_sent"}},
    {Outcome::kNextHopNoAnswer, {503, "Unreachable", RetryAfter::kNone, "next_hop_no_answer"}},
    {Outcome::kInvalidMessage, {400, "Bad Request", RetryAfter::kNone, "invalid_message"}},
    {Outcome::kRelayTimerC, {408, "Request Timeout", RetryAfter::kNone, "timer_c"}},
    {Outcome::kRateLimited, {503, "Rate limited", RetryAfter::kBusy, "rate_limited"}},
    {Outcome::kPushFailed, {480, "Temporarily Unavailable", RetryAfter::kNone, "push_failed"}},
    {Outcome::kMergedRequest, {482, "Loop Detected", RetryAfter::kNone, "merged_request"}},
}};

constexpr bool InEnumOrder() {
  for (size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<size_t>(kTable[i].outcome) != i) return false;
  }
  return true;
}
static_assert(InEnumOrder(), "kTable rows must follow the order of enum Outcome");
static_assert(kTable.back().outcome == Outcome::kMergedRequest, "an Outcome has no row");

absl::Duration RetryDelay(RetryAfter kind, const RetryAfterConfig& retry) {
  switch (kind) {
    case RetryAfter::kBusy:
      return retry.busy;
    case RetryAfter::kStore:
      return retry.store_hint ? std::max(retry.store, retry.store_hint()) : retry.store;
    case RetryAfter::kConflict:
      return retry.conflict;
    case RetryAfter::kNone:
      break;
  }
  return absl::ZeroDuration();
}

}  // namespace

const OutcomeInfo& Describe(Outcome outcome) { return kTable[static_cast<size_t>(outcome)].info; }

absl::Duration RetryDelayOf(Outcome outcome, const RetryAfterConfig& retry) {
  return RetryDelay(Describe(outcome).retry_after, retry);
}

SipAnswer AnswerFor(Outcome outcome, const RetryAfterConfig& retry, absl::string_view reason,
                    const HeaderList& extra) {
  const OutcomeInfo& info = Describe(outcome);
  SipAnswer answer;
  answer.status = info.status;
  answer.reason = std::string(reason.empty() ? info.reason : reason);
  if (info.retry_after != RetryAfter::kNone) {
    answer.headers.emplace_back(
        "Retry-After", absl::StrCat(absl::ToInt64Seconds(RetryDelay(info.retry_after, retry))));
  }
  answer.headers.insert(answer.headers.end(), extra.begin(), extra.end());
  return answer;
}

}  // namespace pushgate::proxy
