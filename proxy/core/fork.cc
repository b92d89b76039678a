#include "proxy/core/fork.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace pushgate::proxy {
namespace {

using Type = ForkAction::Type;
using State = Branch::State;

// Final responses that do not prove the device is awake: it may still wake up and register.
bool NotAnAnswer(int status) { return status == 0 || status == 408 || status == 503; }

ForkAction Act(Type type, BranchId branch = 0, int status = 0, std::string reason = "") {
  ForkAction a{type, branch, status, std::move(reason)};
  return a;
}

// Our own answer to the caller.
// RFC 3326 Reason for a call no push could wake: the failure as quoted text, kept printable
// and without quotes (it comes from the pusher) and short.
std::string PushFailureReason(absl::string_view error) {
  constexpr size_t kMaxText = 120;
  std::string text = "Push failed: ";
  for (char c : error) {
    if (text.size() >= kMaxText) break;
    const bool printable = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    text.push_back(printable ? c : '?');
  }
  return absl::StrCat("SIP;cause=480;text=\"", text, "\"");
}

ForkAction Answer(Outcome outcome) {
  ForkAction a{Type::kRespond};
  a.outcome = outcome;
  return a;
}

}  // namespace

std::optional<PushKind> PushKindFor(const Binding& binding) {
  if (!binding.push || binding.push->capability_query()) return std::nullopt;
  switch (binding.push->provider) {
    case PushParams::kApns:
    case PushParams::kApnsSandbox:
      return binding.push->voip ? PushKind::kVoip : PushKind::kAlert;
    case PushParams::kFcm:
      return PushKind::kData;
    default:
      return std::nullopt;
  }
}

Fork::Fork(ForkPolicy policy, absl::Time now)
    : policy_(policy), deadline_(now + policy.call_timeout) {}

const Branch* Fork::branch(BranchId id) const {
  if (id == 0 || id > branches_.size()) return nullptr;
  return &branches_[id - 1];
}

Branch* Fork::MutableBranch(BranchId id) { return const_cast<Branch*>(branch(id)); }

Fork::Actions Fork::Start(const std::vector<Binding>& bindings, const std::vector<bool>& reachable,
                          absl::Time now, ForkScope scope) {
  Actions out;
  scope_ = scope;
  for (size_t i = 0; i < bindings.size(); ++i) {
    if (bindings[i].expired(now)) continue;
    AddBranch(bindings[i], i < reachable.size() && reachable[i], /*may_push=*/true, now, out);
  }
  if (branches_.empty()) {
    out.push_back(Answer(Outcome::kNoBinding));
    Finish(out);
    return out;
  }
  Actions due = OnTimer(now);
  out.insert(out.end(), due.begin(), due.end());
  MaybeFinish(now, out);
  return out;
}

BranchId Fork::AddBranch(const Binding& binding, bool reachable, bool may_push, absl::Time now,
                         Actions& out) {
  Branch b;
  b.id = static_cast<BranchId>(branches_.size() + 1);
  b.binding = binding;
  b.push_kind = PushKindFor(binding);
  if (reachable) {
    b.state = State::kTrying;
    any_reached_ = true;
    out.push_back(Act(Type::kSendRequest, b.id));
    if (may_push && b.push_kind) SchedulePush(b, now, /*at_once=*/false);
  } else if (may_push && b.push_kind) {
    b.state = State::kWaiting;
    SchedulePush(b, now, /*at_once=*/true);  // its connection is gone: only a push can reach it
  } else {
    b.state = State::kFinal;  // unreachable and not pushable: nothing to wait for
    b.final_status = 0;
  }
  branches_.push_back(std::move(b));
  return branches_.back().id;
}

void Fork::SchedulePush(Branch& b, absl::Time now, bool at_once) {
  absl::Duration delay =
      b.push_kind == PushKind::kVoip ? policy_.push_delay_voip : policy_.push_delay_other;
  b.push_due = at_once ? now : now + delay;
}

void Fork::SendPush(Branch& b, absl::Time now, Actions& out) {
  ForkAction push = Act(Type::kSendPush, b.id);
  push.push_kind = *b.push_kind;
  out.push_back(push);
  ++b.pushes_sent;
  any_reached_ = true;
  b.push_due.reset();
  if (b.push_kind == PushKind::kAlert && policy_.alert_repeat_interval > absl::ZeroDuration()) {
    b.push_due = now + policy_.alert_repeat_interval;
  }
  if (policy_.send_110_push_sent && !sent_110_) {
    sent_110_ = true;
    out.push_back(Answer(Outcome::kPushSent));
  }
}

Fork::Actions Fork::OnResponse(BranchId id, int status, absl::Time now) {
  Actions out;
  Branch* b = MutableBranch(id);
  if (b == nullptr || status <= 100) return out;
  if (status < 200) {
    if (b->state == State::kTrying || b->state == State::kWaiting) b->state = State::kRinging;
    b->push_due.reset();  // it rang: the device is awake, no push
    // A cancelled branch's 1xx (it releases our held CANCEL, RFC 3261 9.1) is no news for the
    // caller.
    if (!finished_ && b->state != State::kCancelled) {
      out.push_back(Act(Type::kForwardProvisional, id, status));
    }
    return out;
  }
  bool was_live = b->state == State::kTrying || b->state == State::kRinging;
  if (b->state != State::kCancelled) b->state = State::kFinal;
  b->final_status = status;
  if (status < 300) {
    b->push_due.reset();
    if (answered_ && id == answered_branch_) {
      out.push_back(Act(Type::kForwardFinal, id, status));  // a retransmission of the answer
      return out;
    }
    if (finished_ || caller_cancelled_) {
      // Nobody takes this answer: the caller hung up, another branch won, or the call is over.
      // We sent the INVITE, so we end the phone's dialog (RFC 3261 16.7 step 9 relays it only
      // to a caller that can still take it).
      out.push_back(Act(Type::kReleaseAnswer, id, status));
      return out;
    }
    out.push_back(Act(Type::kForwardFinal, id, status));
    answered_ = true;
    answered_branch_ = id;
    CancelAllPending(kCompletedElsewhere, out);
    Finish(out);
    return out;
  }
  if (finished_ || !was_live) return out;
  if (!NotAnAnswer(status)) b->push_due.reset();  // the device answered (busy, declined...)
  if (status >= 600) {
    out.push_back(Act(Type::kForwardFinal, id, status));
    CancelAllPending("", out);
    Finish(out);
    return out;
  }
  MaybeFinish(now, out);
  return out;
}

Fork::Actions Fork::OnTimer(absl::Time now) {
  Actions out;
  if (finished_) return out;
  if (now >= deadline_) {
    if (caller_cancelled_) {
      Finish(out);  // VoIP devices that never registered again: nothing more to deliver
    } else {
      FinishWithBest(out);
    }
    return out;
  }
  for (Branch& b : branches_) {
    if (b.push_due && *b.push_due <= now && !b.token_dead && !b.superseded &&
        b.state != State::kCancelled) {
      SendPush(b, now, out);
    }
  }
  return out;
}

Fork::Actions Fork::OnPushResult(BranchId id, PushOutcome outcome, absl::Time now,
                                 absl::string_view detail) {
  Actions out;
  Branch* b = MutableBranch(id);
  if (b == nullptr) return out;
  if (outcome == PushOutcome::kAccepted) {
    b->push_accepted = true;
    return out;
  }
  b->deliver_cancel = false;
  b->push_due.reset();
  if (outcome == PushOutcome::kTokenInvalid) {
    b->token_dead = true;
    out.push_back(Act(Type::kRemoveBinding, id));
  } else {
    b->push_failed = true;
    b->push_error = std::string(detail.empty() ? "unknown error" : detail);
  }
  if (finished_) return out;
  if (caller_cancelled_) {
    if (std::none_of(branches_.begin(), branches_.end(),
                     [](const Branch& x) { return x.deliver_cancel; })) {
      Finish(out);
    }
    return out;
  }
  MaybeFinish(now, out);
  return out;
}

Branch* Fork::FindDevice(const Binding& binding) {
  std::string key = binding.push_key();
  for (auto it = branches_.rbegin(); it != branches_.rend(); ++it) {
    if (it->superseded) continue;
    const Binding& old = it->binding;
    bool same = !binding.instance_id.empty()
                    ? binding.instance_id == old.instance_id
                    : (!key.empty() ? key == old.push_key() : binding.contact == old.contact);
    if (same) return &*it;
  }
  return nullptr;
}

Fork::Actions Fork::OnRegistration(const Binding& binding, bool reachable, absl::Time now) {
  Actions out;
  if (finished_ || !reachable) return out;
  Branch* device = FindDevice(binding);
  if (device == nullptr && scope_ == ForkScope::kDevice) return out;  // another phone's
  if (caller_cancelled_) {
    if (device == nullptr || !device->deliver_cancel) return out;
    device->deliver_cancel = false;
    device->superseded = true;
    BranchId id = AddBranch(binding, true, /*may_push=*/false, now, out);
    out.push_back(Act(Type::kCancelBranch, id));
    MutableBranch(id)->state = State::kCancelled;
    if (std::none_of(branches_.begin(), branches_.end(),
                     [](const Branch& x) { return x.deliver_cancel; })) {
      Finish(out);
    }
    return out;
  }
  if (device != nullptr) {
    device->push_due.reset();  // it registered before (or after) the push: no more pushes
    bool moved = device->binding.contact != binding.contact ||
                 device->binding.flow_token != binding.flow_token ||
                 device->binding.received != binding.received;
    if (device->state == State::kRinging) return out;           // awake on its current contact
    if (device->state == State::kTrying && !moved) return out;  // the INVITE is on its way
    if (device->state == State::kTrying) {
      out.push_back(Act(Type::kCancelBranch, device->id));
      device->state = State::kCancelled;
    }
    device->superseded = true;
  }
  AddBranch(binding, true, /*may_push=*/false, now, out);
  return out;
}

Fork::Actions Fork::OnCallerCancel(absl::Time now) {
  Actions out;
  if (finished_ || caller_cancelled_) return out;
  caller_cancelled_ = true;
  bool voip_waiting = false;
  for (Branch& b : branches_) {
    bool saw_call =
        b.state == State::kRinging || (b.state == State::kFinal && !NotAnAnswer(b.final_status));
    bool device_live = !b.superseded && !b.token_dead && b.state != State::kCancelled;
    if (b.state == State::kTrying || b.state == State::kRinging) {
      out.push_back(Act(Type::kCancelBranch, b.id));
      b.state = State::kCancelled;
    }
    b.push_due.reset();
    if (saw_call || !device_live || !b.push_kind) continue;
    if (*b.push_kind == PushKind::kVoip) {
      b.deliver_cancel = true;
      voip_waiting = true;
    } else if (*b.push_kind == PushKind::kAlert) {
      ForkAction push = Act(Type::kSendPush, b.id);
      push.push_kind = PushKind::kMissedCallAlert;
      out.push_back(push);
    }
  }
  out.push_back(Answer(Outcome::kCallTerminated));
  if (!voip_waiting) Finish(out);
  return out;
}

bool Fork::Pending(const Branch& b) const {
  if (b.superseded) return false;
  switch (b.state) {
    case State::kTrying:
    case State::kRinging:
      return true;
    case State::kWaiting:
      return b.push_kind.has_value() && !b.token_dead && !b.push_failed;
    case State::kFinal:
      // 408/503 (or never reached): a pushable device may still wake up and register.
      return NotAnAnswer(b.final_status) && b.push_kind.has_value() && !b.token_dead &&
             !b.push_failed;
    case State::kCancelled:
      return false;
  }
  return false;
}

void Fork::CancelAllPending(const std::string& reason, Actions& out) {
  for (Branch& b : branches_) {
    if (b.state == State::kTrying || b.state == State::kRinging) {
      out.push_back(Act(Type::kCancelBranch, b.id, 0, reason));
      b.state = State::kCancelled;
    }
    b.push_due.reset();
  }
}

void Fork::MaybeFinish(absl::Time now, Actions& out) {
  if (finished_) return;
  if (std::any_of(branches_.begin(), branches_.end(),
                  [this](const Branch& b) { return Pending(b); })) {
    return;
  }
  FinishWithBest(out);
}

void Fork::FinishWithBest(Actions& out) {
  // RFC 3261 16.7: a 6xx wins; otherwise the lowest response class; 408/503 only when nothing
  // better arrived; a chosen 503 becomes 500 (the caller must not think *we* are overloaded).
  const Branch* best = nullptr;
  auto rank = [](int status) {
    if (status >= 600) return 0;
    return (status / 100) * 10 + (NotAnAnswer(status) ? 5 : 0);
  };
  for (const Branch& b : branches_) {
    if (b.final_status < 300) continue;
    if (best == nullptr || rank(b.final_status) < rank(best->final_status)) best = &b;
  }
  CancelAllPending("", out);
  const Branch* failed_push = nullptr;  // set when no push went out and one failed
  for (const Branch& b : branches_) {
    if (b.push_accepted) {
      failed_push = nullptr;
      break;
    }
    if (b.push_failed && failed_push == nullptr) failed_push = &b;
  }
  if (best == nullptr && failed_push != nullptr) {
    ForkAction answer = Answer(Outcome::kPushFailed);
    answer.reason = PushFailureReason(failed_push->push_error);
    out.push_back(std::move(answer));
  } else if (best == nullptr) {
    if (any_reached_) {
      out.push_back(Answer(Outcome::kCallTimeout));
    } else {
      out.push_back(Answer(Outcome::kCallUnavailable));
    }
  } else if (best->final_status == 503) {
    out.push_back(Answer(Outcome::kDeviceError));
  } else {
    out.push_back(Act(Type::kForwardFinal, best->id, best->final_status));
  }
  Finish(out);
}

void Fork::Finish(Actions& out) {
  finished_ = true;
  for (Branch& b : branches_) b.push_due.reset();
  out.push_back(Act(Type::kFinished));
}

std::optional<absl::Time> Fork::NextWakeup() const {
  if (finished_) return std::nullopt;
  absl::Time next = deadline_;
  for (const Branch& b : branches_) {
    if (b.push_due && *b.push_due < next) next = *b.push_due;
  }
  return next;
}

}  // namespace pushgate::proxy
