// Where the registrar's bindings live. Asynchronous because the Redis implementation answers on
// the sofia loop later; the in-memory one calls `done` before returning.
//
// All methods are called on the proxy's loop thread; `done` is called on that thread too,
// exactly once. Implementations drop bindings that are expired at `now` from what they return.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/core/binding.h"

namespace pushgate::proxy {

class BindingStore {
 public:
  using FetchDone = std::function<void(absl::StatusOr<std::vector<Binding>>)>;
  using ReplaceDone = std::function<void(absl::Status)>;
  using RemoveDone = std::function<void(absl::StatusOr<size_t>)>;
  // Called for every binding that a Replace added or changed (not for unchanged or removed
  // ones): the fork-late hook ("the phone registered again, send it the pending INVITE").
  using Listener = std::function<void(const std::string& aor, const Binding& binding)>;
  using SubscriptionId = uint64_t;

  virtual ~BindingStore() = default;

  // The live bindings of `aor` (AorKey), in the order stored (ApplyRegistration's order).
  // Unknown AOR -> an empty vector. UNAVAILABLE when the backend store is down.
  virtual void Fetch(const std::string& aor, absl::Time now, FetchDone done) = 0;

  // Replaces all bindings of `aor` with `bindings` (an empty vector deletes the AOR). Bindings
  // already expired at `now` are not stored. Listeners run before `done`.
  virtual void Replace(const std::string& aor, std::vector<Binding> bindings, absl::Time now,
                       ReplaceDone done) = 0;

  // Read-modify-write of `aor`'s bindings, atomic with respect to every other writer of this
  // process or of another replica sharing the store: `mutate` gets the live bindings and returns
  // the set to store instead (empty deletes the AOR; expired ones are dropped as in Replace).
  // A store that detects a concurrent change re-reads and calls `mutate` again, so `mutate` must
  // depend only on its argument. Listeners run as for Replace. ABORTED when the AOR kept
  // changing, UNAVAILABLE when the store is down.
  using Mutation = std::function<std::vector<Binding>(std::vector<Binding> live)>;
  virtual void Update(const std::string& aor, absl::Time now, Mutation mutate,
                      ReplaceDone done) = 0;

  // Removes the bindings of `aor` whose push_key() equals `push_key` (a dead token reported by
  // the pusher). `done` gets how many were removed.
  virtual void RemoveByPushKey(const std::string& aor, const std::string& push_key, absl::Time now,
                               RemoveDone done) = 0;

  // Number of bindings stored (may include not yet swept expired ones); for metrics.
  virtual size_t ApproximateSize() const = 0;

  // Registration listener hook; see Listener. Listeners may be called from Replace of this
  // process only (the Redis store may add cross-replica notification later).
  virtual SubscriptionId Subscribe(Listener listener) = 0;
  virtual void Unsubscribe(SubscriptionId id) = 0;
};

}  // namespace pushgate::proxy
