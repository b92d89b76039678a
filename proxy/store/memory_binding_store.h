// In-memory BindingStore (the default, embedded registrar). Each AOR's bindings are kept as one
// compact EncodeBindings record (a few hundred bytes per binding) to stay under 1 KiB of RSS per
// binding at a million bindings. Calls `done` synchronously. Not thread-safe (sofia loop only).
#pragma once

#include <cstddef>
#include <cstdint>
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
  void Update(const std::string& aor, absl::Time now, Mutation mutate, ReplaceDone done) override;
  void RemoveByPushKey(const std::string& aor, const std::string& push_key, absl::Time now,
                       RemoveDone done) override;
  size_t ApproximateSize() const override { return binding_count_; }
  SubscriptionId Subscribe(Listener listener) override;
  void Unsubscribe(SubscriptionId id) override;

  // Drops every binding expired at `now`. Returns how many bindings were removed. Cost: one pass
  // over all AORs (about 20 ms at a million AORs) plus decoding the AORs that have SOME expired
  // bindings (AORs whose bindings all expired are dropped without decoding). Prefer SweepSome
  // on the event loop.
  size_t Sweep(absl::Time now);

  // Incremental sweep for the event loop: sweeps the next `shards` of the kShards shards
  // (round robin), so one call at a million AORs takes well under a millisecond. Calling it
  // every 100 ms with shards = 1 sweeps everything every kShards / 10 seconds.
  size_t SweepSome(absl::Time now, size_t shards = 1);

  static constexpr size_t kShards = 64;

  size_t aor_count() const;

 private:
  struct Record {
    std::string data;        // EncodeBindings
    int64_t earliest_s = 0;  // floor(EarliestExpiry) in Unix seconds: something may expire
    int64_t latest_s = 0;    // ceil(latest expiry): everything expired, drop without decoding
    uint32_t count = 0;      // number of bindings in `data`
  };
  using Shard = absl::flat_hash_map<std::string, Record>;

  Shard& ShardFor(const std::string& aor);
  void Store(const std::string& aor, const std::vector<Binding>& bindings);
  size_t SweepShard(Shard& shard, absl::Time now);

  std::vector<Shard> shards_ = std::vector<Shard>(kShards);
  size_t next_shard_ = 0;
  size_t binding_count_ = 0;
  std::map<SubscriptionId, Listener> listeners_;
  SubscriptionId next_subscription_ = 1;
};

}  // namespace pushgate::proxy
