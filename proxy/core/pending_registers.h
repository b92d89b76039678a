// A bounded, expiring LRU map from an id (e.g. the backend transaction's branch) to a value.
// Pure: no clock, `now` is passed in. Not thread-safe (lives on the sofia loop).
#pragma once

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proxy/core/registrar.h"

namespace pushgate::proxy {

template <typename Value>
class ExpiringLruCache final {
 public:
  using Entry = std::pair<std::string, Value>;

  explicit ExpiringLruCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // Inserts or replaces `id`; it becomes the most recently used. Returns the entries evicted to
  // stay within capacity (least recently used first), so the caller can answer them.
  std::vector<Entry> Insert(std::string id, Value value, absl::Time expires_at) {
    std::vector<Entry> evicted;
    if (auto it = index_.find(id); it != index_.end()) {
      lru_.erase(it->second);
      index_.erase(it);
    }
    lru_.push_front(Node{id, std::move(value), expires_at});
    index_.emplace(std::move(id), lru_.begin());
    while (lru_.size() > capacity_) {
      Node& oldest = lru_.back();
      index_.erase(oldest.id);
      evicted.emplace_back(std::move(oldest.id), std::move(oldest.value));
      lru_.pop_back();
    }
    return evicted;
  }

  // The live value for `id` (marked most recently used), nullptr if absent or expired at `now`.
  Value* Find(absl::string_view id, absl::Time now) {
    auto it = index_.find(id);
    if (it == index_.end() || it->second->expires_at <= now) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return &it->second->value;
  }

  // Removes and returns the value for `id`; nullopt if absent or expired at `now` (an expired
  // entry is removed too).
  std::optional<Value> Take(absl::string_view id, absl::Time now) {
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    auto node = it->second;
    index_.erase(it);
    std::optional<Value> result;
    if (node->expires_at > now) result.emplace(std::move(node->value));
    lru_.erase(node);
    return result;
  }

  bool Erase(absl::string_view id) {
    auto it = index_.find(id);
    if (it == index_.end()) return false;
    lru_.erase(it->second);
    index_.erase(it);
    return true;
  }

  // Removes and returns every entry expired at `now` (O(size)).
  std::vector<Entry> Sweep(absl::Time now) {
    std::vector<Entry> expired;
    for (auto it = lru_.begin(); it != lru_.end();) {
      if (it->expires_at <= now) {
        index_.erase(it->id);
        expired.emplace_back(std::move(it->id), std::move(it->value));
        it = lru_.erase(it);
      } else {
        ++it;
      }
    }
    return expired;
  }

  size_t size() const { return lru_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Node {
    std::string id;
    Value value;
    absl::Time expires_at;
  };
  size_t capacity_;
  std::list<Node> lru_;  // most recently used first
  absl::flat_hash_map<std::string, typename std::list<Node>::iterator> index_;
};

// The original REGISTER kept while the backend answers (keyed by the adapter's transaction id).
using PendingRegisters = ExpiringLruCache<RegisterRequest>;

}  // namespace pushgate::proxy
