#include "proxy/store/memory_binding_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pushgate::proxy {
namespace {

void DropExpired(std::vector<Binding>& bindings, absl::Time now) {
  std::erase_if(bindings, [&](const Binding& b) { return b.expired(now); });
}

}  // namespace

void MemoryBindingStore::Store(const std::string& aor, const std::vector<Binding>& bindings) {
  auto it = records_.find(aor);
  if (it != records_.end()) binding_count_ -= it->second.count;
  if (bindings.empty()) {
    if (it != records_.end()) records_.erase(it);
    return;
  }
  Record record;
  record.data = EncodeBindings(bindings);
  record.data.shrink_to_fit();
  record.earliest = EarliestExpiry(bindings);
  record.count = static_cast<uint32_t>(bindings.size());
  binding_count_ += record.count;
  if (it != records_.end()) {
    it->second = std::move(record);
  } else {
    records_.emplace(aor, std::move(record));
  }
}

void MemoryBindingStore::Fetch(const std::string& aor, absl::Time now, FetchDone done) {
  auto it = records_.find(aor);
  if (it == records_.end()) {
    done(std::vector<Binding>());
    return;
  }
  auto bindings = DecodeBindings(it->second.data, aor);
  if (!bindings.ok()) {
    done(absl::InternalError(
        absl::StrCat("corrupt in-memory record for ", aor, ": ", bindings.status().message())));
    return;
  }
  DropExpired(*bindings, now);
  done(*std::move(bindings));
}

void MemoryBindingStore::Replace(const std::string& aor, std::vector<Binding> bindings,
                                 absl::Time now, ReplaceDone done) {
  DropExpired(bindings, now);
  for (Binding& b : bindings) b.aor = aor;
  std::vector<Binding> previous;
  if (!listeners_.empty()) {
    if (auto it = records_.find(aor); it != records_.end()) {
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
  auto it = records_.find(aor);
  if (it == records_.end() || push_key.empty()) {
    done(size_t{0});
    return;
  }
  auto bindings = DecodeBindings(it->second.data, aor);
  if (!bindings.ok()) {
    done(absl::InternalError(
        absl::StrCat("corrupt in-memory record for ", aor, ": ", bindings.status().message())));
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

size_t MemoryBindingStore::Sweep(absl::Time now) {
  size_t removed = 0;
  for (auto it = records_.begin(); it != records_.end();) {
    Record& record = it->second;
    if (record.earliest > now) {
      ++it;
      continue;
    }
    auto bindings = DecodeBindings(record.data, it->first);
    if (!bindings.ok()) {
      // Cannot happen with records this class wrote; drop rather than keep sweeping it forever.
      removed += record.count;
      binding_count_ -= record.count;
      records_.erase(it++);
      continue;
    }
    const size_t before = bindings->size();
    DropExpired(*bindings, now);
    removed += before - bindings->size();
    if (bindings->empty()) {
      binding_count_ -= record.count;
      records_.erase(it++);
    } else {
      binding_count_ -= record.count;
      record.data = EncodeBindings(*bindings);
      record.data.shrink_to_fit();
      record.earliest = EarliestExpiry(*bindings);
      record.count = static_cast<uint32_t>(bindings->size());
      binding_count_ += record.count;
      ++it;
    }
  }
  return removed;
}

}  // namespace pushgate::proxy
