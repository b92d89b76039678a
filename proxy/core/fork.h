// The fork of one incoming call (INVITE or MESSAGE) to the bindings of an AOR: parallel
// branches, push decisions, fork-late delivery on re-registration, best final response.
//
// Pure: events come in with the current time, decisions come out as Actions the sofia adapter
// carries out. No timers are armed here: the adapter calls OnTimer() at NextWakeup().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proxy/core/binding.h"
#include "proxy/core/outcomes.h"

namespace pushgate::proxy {

struct ForkPolicy {
  absl::Duration call_timeout = absl::Seconds(90);
  // Delay before pushing a branch that gave no provisional response. iOS VoIP (PushKit) apps
  // must be woken for every call, so their default is 0: push at once.
  absl::Duration push_delay_voip = absl::ZeroDuration();
  absl::Duration push_delay_other = absl::Seconds(3);
  // APNs alert pushes are repeated at this interval until the call is answered (0 = once).
  absl::Duration alert_repeat_interval = absl::ZeroDuration();
  bool send_110_push_sent = true;
};

enum class PushKind : uint8_t {
  kVoip,             // APNs PushKit (app has a VoIP token)
  kData,             // FCM high-priority data message
  kAlert,            // APNs alert (no VoIP token)
  kMissedCallAlert,  // APNs alert after the caller cancelled (non-VoIP iOS apps)
};

// How the fork would push a binding, or nullopt when it cannot (no push parameters, a
// capability query, an unsupported provider).
std::optional<PushKind> PushKindFor(const Binding& binding);

using BranchId = uint32_t;

// Which registrations during the call the fork takes (fork late).
enum class ForkScope : uint8_t {
  kAor,     // any device of the AOR: a device it did not call yet gets a branch too
  kDevice,  // only the devices it started with (a call to one masqueraded contact: one phone)
};

struct Branch {
  enum class State : uint8_t {
    kWaiting,    // no INVITE sent (unreachable): waiting for the device to wake and register
    kTrying,     // INVITE sent, no provisional response (100 Trying does not count)
    kRinging,    // a provisional response 101-199 arrived
    kFinal,      // a final response arrived
    kCancelled,  // cancelled by us (caller CANCEL, another branch answered, superseded)
  };
  BranchId id = 0;
  Binding binding;
  State state = State::kWaiting;
  int final_status = 0;
  std::optional<PushKind> push_kind;
  std::optional<absl::Time> push_due;  // a push is pending for this time
  int pushes_sent = 0;
  bool token_dead = false;  // the pusher reported the token invalid
  // No push could be sent (the pusher's verdict was a failure, or there is no pusher): only a
  // registration of its own could still reach this device.
  bool push_failed = false;
  bool push_accepted = false;  // a provider accepted a push for this device
  std::string push_error;      // why the last push failed ("RETRY_LATER 503", "no pusher")
  bool superseded = false;     // a newer branch serves the same device
  // The caller cancelled before this iOS VoIP device saw the call: when it registers within
  // the fork time it still gets the INVITE, then the CANCEL (CallKit shows a missed call).
  bool deliver_cancel = false;
};

struct ForkAction {
  enum class Type : uint8_t {
    kSendRequest,         // send the request on `branch` to its binding
    kCancelBranch,        // CANCEL `branch` (with `reason` as Reason header, may be empty)
    kSendPush,            // push `branch`'s binding with `push_kind`
    kForwardProvisional,  // relay `branch`'s provisional response `status` to the caller
    kForwardFinal,        // relay `branch`'s final response (`status`) to the caller
    kRespond,             // answer the caller ourselves with `outcome` (110 or a final one),
                          // with `reason` as Reason header when not empty
    kRemoveBinding,       // the device token is dead: remove the binding (`branch`'s)
    kFinished,            // the fork is over; the adapter may free it once branches end
    // `branch` answered 2xx but the caller cannot take it (it cancelled, another branch
    // answered, the fork ended): ACK it, then BYE it (RFC 3261 15, 16.7 step 9). Repeated for
    // each retransmission of that 2xx (the adapter then only ACKs again).
    kReleaseAnswer,
  };
  Type type;
  BranchId branch = 0;
  int status = 0;
  std::string reason;
  PushKind push_kind = PushKind::kVoip;
  Outcome outcome = Outcome::kInternalError;  // kRespond: the answer (proxy/core/outcomes.h)

  bool operator==(const ForkAction&) const = default;
};

// Reason header for the branches cancelled because another answered (RFC 3326).
inline constexpr char kCompletedElsewhere[] = "SIP;cause=200;text=\"Call completed elsewhere\"";

class Fork {
 public:
  using Actions = std::vector<ForkAction>;

  Fork(ForkPolicy policy, absl::Time now);

  // Starts the fork. `bindings` are the AOR's bindings, `reachable[i]` whether bindings[i] can
  // be sent to now (UDP: yes; TCP/TLS: its connection is still open). No binding -> 404; none
  // reachable and none pushable -> 480. `scope`: which registrations OnRegistration takes.
  Actions Start(const std::vector<Binding>& bindings, const std::vector<bool>& reachable,
                absl::Time now, ForkScope scope = ForkScope::kAor);

  // A response on a branch (100 is ignored). The first 2xx is forwarded (and its
  // retransmissions); any other 2xx is released (kReleaseAnswer).
  Actions OnResponse(BranchId branch, int status, absl::Time now);

  // Push timers and the call timeout.
  Actions OnTimer(absl::Time now);

  // The result of a push sent for `branch`. kFailed (`detail` says why: the pusher's verdict,
  // an RPC error, no pusher): a device only a push could reach is no longer waited for; when
  // nothing else is pending and no push went out, the caller gets 480 with a Reason header
  // naming the failure (Outcome::kPushFailed), not a 408 at the end of the fork time.
  enum class PushOutcome : uint8_t { kAccepted, kTokenInvalid, kFailed };
  Actions OnPushResult(BranchId branch, PushOutcome outcome, absl::Time now,
                       absl::string_view detail = {});

  // A binding of the AOR was added or refreshed (the device woke up and registered). In the
  // kDevice scope, a device the fork did not start with is ignored.
  Actions OnRegistration(const Binding& binding, bool reachable, absl::Time now);

  // The caller sent CANCEL.
  Actions OnCallerCancel(absl::Time now);

  // When OnTimer must be called next (nullopt once finished with nothing left to time).
  std::optional<absl::Time> NextWakeup() const;

  bool finished() const { return finished_; }
  bool answered() const { return answered_; }
  ForkScope scope() const { return scope_; }
  const std::vector<Branch>& branches() const { return branches_; }
  const Branch* branch(BranchId id) const;

 private:
  Branch* MutableBranch(BranchId id);
  // `may_push`: false for a device that just registered (it is awake).
  BranchId AddBranch(const Binding& binding, bool reachable, bool may_push, absl::Time now,
                     Actions& out);
  void SchedulePush(Branch& b, absl::Time now, bool at_once);
  void SendPush(Branch& b, absl::Time now, Actions& out);
  // The device the binding belongs to, among live branches (same +sip.instance, else push key).
  Branch* FindDevice(const Binding& binding);
  // A branch still has a chance to answer: it is trying/ringing, or waits for a wake-up.
  bool Pending(const Branch& b) const;
  void CancelAllPending(const std::string& reason, Actions& out);
  void MaybeFinish(absl::Time now, Actions& out);
  void FinishWithBest(Actions& out);
  void Finish(Actions& out);

  ForkPolicy policy_;
  absl::Time deadline_;
  std::vector<Branch> branches_;
  ForkScope scope_ = ForkScope::kAor;
  bool finished_ = false;
  bool answered_ = false;
  BranchId answered_branch_ = 0;  // the branch whose 2xx went to the caller
  bool caller_cancelled_ = false;
  bool sent_110_ = false;
  bool any_reached_ = false;  // some branch got an INVITE or a push
};

}  // namespace pushgate::proxy
