// The calls in progress of a CallRouter: one Call per incoming INVITE/MESSAGE (the caller's
// server transaction, the fork, the branches' client transactions), indexed by id and by AOR so
// a registration reaches its AOR's forks without scanning every call. Owns each Call and,
// through it, its transactions (IncomingPtr/OutgoingPtr): removing a call destroys them,
// branches first. Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proxy/core/call_target.h"
#include "proxy/core/fork.h"
#include "proxy/core/transport.h"
#include "proxy/push/push_request.h"
#include "proxy/sofia/sofia_util.h"

namespace pushgate::proxy::sofia {

class CallRouter;

// The call's facts for a push (Call-ID, From URI, unquoted display name).
CallInfo CallInfoOf(const sip_t* sip);

struct Call {
  // One branch's client transaction; the nta magic of its callbacks.
  struct BranchTxn {
    CallRouter* router = nullptr;
    uint64_t call_id = 0;
    BranchId id = 0;
    OutgoingPtr orq;
    MsgPtr final_response;  // the phone's final response (not nta's own 408/503)
    int final_status = 0;
    // A 2xx the caller could not take (Fork kReleaseAnswer): ACKed, and ended by our BYE.
    OutgoingPtr bye;
    int bye_status = 0;  // the BYE's final status (0 while pending)
  };

  Call(const ForkPolicy& policy, absl::Time now) : fork(policy, now), started(now) {}

  uint64_t id = 0;  // set by CallTable::Add
  CallRouter* router = nullptr;
  std::string aor;
  CallTarget target;      // who the call is for (one phone, or the whole AOR)
  std::string merge_key;  // MergeKey once the fork started ("" for the whole AOR)
  std::string method;
  std::optional<Transport> in_transport;  // the caller's request came in over it
  IncomingPtr irq;  // declared before `branches`: the branches' transactions go first
  MsgPtr request;   // the caller's request
  CallInfo info;
  Fork fork;
  std::map<BranchId, std::unique_ptr<BranchTxn>> branches;
  bool final_sent = false;
  bool finished = false;
  bool free_scheduled = false;
  std::optional<absl::Time> timer_at;  // its wakeup (see WakeupTimer)
  absl::Time started;
};

class CallTable final {
 public:
  // Takes `call` (its `aor` set), gives it an id.
  Call& Add(std::unique_ptr<Call> call);
  Call* Find(uint64_t id) const;
  // The ids of the open calls of `aor` (a copy: the caller may remove calls meanwhile).
  std::vector<uint64_t> OfAor(const std::string& aor) const;
  // Removes and destroys the call (and its transactions); false when unknown.
  bool Remove(uint64_t id);

  size_t size() const { return calls_.size(); }
  // For shutdown: every call, in id order.
  const std::map<uint64_t, std::unique_ptr<Call>>& all() const { return calls_; }
  void Clear();

 private:
  std::map<uint64_t, std::unique_ptr<Call>> calls_;
  std::map<std::string, std::set<uint64_t>> by_aor_;
  uint64_t next_id_ = 1;
};

}  // namespace pushgate::proxy::sofia
