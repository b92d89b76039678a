#include "proxy/store/memory_binding_store.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace pushgate::proxy {
namespace {

void DropExpired(std::vector<Binding>& bindings, absl::Time now) {
  std::erase_if(bindings, [&](const Binding& b) { return b.expired(now); });
}

int64_t FloorSeconds(absl::Time t) { return absl::ToUnixSeconds(t); }

int64_t CeilSeconds(absl::Time t) {
  const int64_t s = absl::ToUnixSeconds(t);
  return absl::FromUnixSeconds(s) < t ? s + 1 : s;
}

absl::Status Corrupt(const std::string& aor, const absl::Status& status) {
  return absl::InternalError(
      absl::StrCat("corrupt in-memory record for ", aor, ": ", status.message()));
}

}  // namespace

MemoryBindingStore::Shard& MemoryBindingStore::ShardFor(const std::string& aor) {
  return shards_[absl::Hash<std::string>{}(aor) % kShards];
}

size_t MemoryBindingStore::aor_count() const {
  size_t n = 0;
  for (const Shard& s : shards_) n += s.size();
  return n;
}

void MemoryBindingStore::Store(const std::string& aor, const std::vector<Binding>& bindings) {
  Shard& shard = ShardFor(aor);
  auto it = shard.find(aor);
  if (it != shard.end()) binding_count_ -= it->second.count;
  if (bindings.empty()) {
    if (it != shard.end()) shard.erase(it);
    return;
  }
  Record record;
  record.data = EncodeBindings(bindings);
  record.data.shrink_to_fit();
  absl::Time latest = absl::InfinitePast();
  for (const Binding& b : bindings) latest = std::max(latest, b.expires_at);
  record.earliest_s = FloorSeconds(EarliestExpiry(bindings));
  record.latest_s = CeilSeconds(latest);
  record.count = static_cast<uint32_t>(bindings.size());
  binding_count_ += record.count;
  if (it != shard.end()) {
    it->second = std::move(record);
  } else {
    shard.emplace(aor, std::move(record));
  }
}

void MemoryBindingStore::Fetch(const std::string& aor, absl::Time now, FetchDone done) {
  Shard& shard = ShardFor(aor);
  auto it = shard.find(aor);
  if (it == shard.end()) {
    done(std::vector<Binding>());
    return;
  }
  auto bindings = DecodeBindings(it->second.data, aor);
  if (!bindings.ok()) {
    done(Corrupt(aor, bindings.status()));
    return;
  }
  DropExpired(*bindings, now);
  done(*std::move(bindings));
}

void MemoryBindingStore::Update(const std::string& aor, absl::Time now, Mutation mutate,
                                ReplaceDone done) {
  // Single-threaded and synchronous: nothing can change the AOR between the read and the write.
  absl::StatusOr<std::vector<Binding>> live;
  Fetch(aor, now, [&live](absl::StatusOr<std::vector<Binding>> b) { live = std::move(b); });
  if (!live.ok()) {
    done(live.status());
    return;
  }
  Replace(aor, mutate(*std::move(live)), now, std::move(done));
}

void MemoryBindingStore::Replace(const std::string& aor, std::vector<Binding> bindings,
                                 absl::Time now, ReplaceDone done) {
  DropExpired(bindings, now);
  for (Binding& b : bindings) b.aor = aor;
  std::vector<Binding> previous;
  if (!listeners_.empty()) {
    Shard& shard = ShardFor(aor);
    if (auto it = shard.find(aor); it != shard.end()) {
      if (auto old = DecodeBindings(it->second.data, aor); old.ok()) previous = *std::move(old);
    }
  }
  Store(aor, bindings);
  if (!listeners_.empty()) {
    // Copy: a listener may Unsubscribe (or Subscribe) while being called.
    std::vector<Listener> listeners;
    for (const auto& [id, l] : listeners_) listeners.push_back(l);
    for (const Binding& b : bindings) {
      if (std::find(previous.begin(), previous.end(), b) != previous.end()) continue;
      for (const Listener& l : listeners) l(aor, b);
    }
  }
  done(absl::OkStatus());
}

void MemoryBindingStore::RemoveByPushKey(const std::string& aor, const std::string& push_key,
                                         absl::Time now, RemoveDone done) {
  Shard& shard = ShardFor(aor);
  auto it = shard.find(aor);
  if (it == shard.end() || push_key.empty()) {
    done(size_t{0});
    return;
  }
  auto bindings = DecodeBindings(it->second.data, aor);
  if (!bindings.ok()) {
    done(Corrupt(aor, bindings.status()));
    return;
  }
  const size_t removed =
      std::erase_if(*bindings, [&](const Binding& b) { return b.push_key() == push_key; });
  DropExpired(*bindings, now);
  Store(aor, *bindings);
  done(removed);
}

BindingStore::SubscriptionId MemoryBindingStore::Subscribe(Listener listener) {
  const SubscriptionId id = next_subscription_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void MemoryBindingStore::Unsubscribe(SubscriptionId id) { listeners_.erase(id); }

size_t MemoryBindingStore::SweepShard(Shard& shard, absl::Time now) {
  const int64_t now_s = FloorSeconds(now);
  size_t removed = 0;
  for (auto it = shard.begin(); it != shard.end();) {
    Record& record = it->second;
    if (record.earliest_s > now_s) {
      ++it;
      continue;
    }
    if (record.latest_s <= now_s) {  // everything expired: no need to decode
      removed += record.count;
      binding_count_ -= record.count;
      shard.erase(it++);
      continue;
    }
    auto bindings = DecodeBindings(record.data, it->first);
    if (!bindings.ok()) {
      // Cannot happen with records this class wrote; drop rather than keep sweeping it forever.
      removed += record.count;
      binding_count_ -= record.count;
      shard.erase(it++);
      continue;
    }
    const size_t before = bindings->size();
    DropExpired(*bindings, now);
    if (bindings->size() == before) {
      // Only the (floored) earliest expiry was due: nothing to drop yet.
      ++it;
      continue;
    }
    removed += before - bindings->size();
    binding_count_ -= record.count;
    if (bindings->empty()) {
      shard.erase(it++);
      continue;
    }
    // Re-encode in place (no insertion, so the iteration stays valid).
    absl::Time latest = absl::InfinitePast();
    for (const Binding& b : *bindings) latest = std::max(latest, b.expires_at);
    record.data = EncodeBindings(*bindings);
    record.data.shrink_to_fit();
    record.earliest_s = FloorSeconds(EarliestExpiry(*bindings));
    record.latest_s = CeilSeconds(latest);
    record.count = static_cast<uint32_t>(bindings->size());
    binding_count_ += record.count;
    ++it;
  }
  return removed;
}

size_t MemoryBindingStore::Sweep(absl::Time now) {
  size_t removed = 0;
  for (Shard& shard : shards_) removed += SweepShard(shard, now);
  return removed;
}

size_t MemoryBindingStore::SweepSome(absl::Time now, size_t shards) {
  size_t removed = 0;
  for (size_t i = 0; i < std::min(shards, kShards); ++i) {
    removed += SweepShard(shards_[next_shard_], now);
    next_shard_ = (next_shard_ + 1) % kShards;
  }
  return removed;
}

}  // namespace pushgate::proxy
