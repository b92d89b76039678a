// In-memory BindingStore (the default, embedded registrar). Each AOR's bindings are kept as one
// compact EncodeBindings record (a few hundred bytes per binding) to stay under 1 KiB of RSS per
// binding at a million bindings. Calls `done` synchronously. Not thread-safe (sofia loop only).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "proxy/store/binding_store.h"

namespace pushgate::proxy {

class MemoryBindingStore final : public BindingStore {
 public:
  MemoryBindingStore() = default;

  void Fetch(const std::string& aor, absl::Time now, FetchDone done) override;
  void Replace(const std::string& aor, std::vector<Binding> bindings, absl::Time now,
               ReplaceDone done) override;
  void RemoveByPushKey(const std::string& aor, const std::string& push_key, absl::Time now,
                       RemoveDone done) override;
  size_t ApproximateSize() const override { return binding_count_; }
  SubscriptionId Subscribe(Listener listener) override;
  void Unsubscribe(SubscriptionId id) override;

  // Drops every binding expired at `now` (call it periodically, e.g. every few seconds).
  // Returns how many bindings were removed. Cost: O(AORs) plus decoding the AORs that have an
  // expired binding.
  size_t Sweep(absl::Time now);

  size_t aor_count() const { return records_.size(); }

 private:
  struct Record {
    std::string data;     // EncodeBindings
    absl::Time earliest;  // EarliestExpiry
    uint32_t count = 0;   // number of bindings in `data`
  };

  void Store(const std::string& aor, const std::vector<Binding>& bindings);

  absl::flat_hash_map<std::string, Record> records_;
  size_t binding_count_ = 0;
  std::map<SubscriptionId, Listener> listeners_;
  SubscriptionId next_subscription_ = 1;
};

}  // namespace pushgate::proxy
