#include "pusher/core/idempotency.h"

#include <algorithm>

namespace pushgate::pusher {

IdempotencyCache::IdempotencyCache(absl::Duration window, size_t max_entries)
    : window_(window), max_entries_(std::max<size_t>(max_entries, 1)) {}

void IdempotencyCache::EraseLocked(absl::flat_hash_map<std::string, Entry>::iterator it) {
  (it->second.done ? done_order_ : in_flight_order_).erase(it->second.order);
  entries_.erase(it);
}

void IdempotencyCache::ExpireLocked(absl::Time now) {
  // done_order_ is sorted by completion time as long as `now` does not go backwards; an entry
  // completed with an earlier `now` only expires a little late.
  while (!done_order_.empty()) {
    auto it = entries_.find(done_order_.front());
    if (it->second.expires_at > now) break;
    EraseLocked(it);
  }
}

void IdempotencyCache::EvictLocked() {
  while (entries_.size() > max_entries_) {
    std::list<std::string>& order = done_order_.empty() ? in_flight_order_ : done_order_;
    EraseLocked(entries_.find(order.front()));
  }
}

IdempotencyCache::BeginResult IdempotencyCache::Begin(absl::string_view request_id,
                                                      absl::Time now) {
  BeginResult out;
  if (request_id.empty()) return out;
  absl::MutexLock lock(&mu_);
  ExpireLocked(now);
  auto it = entries_.find(request_id);
  if (it != entries_.end()) {
    if (it->second.done) {
      out.state = State::kDone;
      out.result = it->second.result;
    } else {
      out.state = State::kInFlight;
    }
    return out;
  }
  std::string id(request_id);
  in_flight_order_.push_back(id);
  Entry entry;
  entry.order = std::prev(in_flight_order_.end());
  entries_.emplace(std::move(id), std::move(entry));
  EvictLocked();
  return out;
}

void IdempotencyCache::Complete(absl::string_view request_id, const v1::PushResult& result,
                                absl::Time now) {
  if (request_id.empty()) return;
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(request_id);
  if (it == entries_.end()) {
    // Evicted while in flight (or never begun): remember the result anyway.
    it = entries_.emplace(std::string(request_id), Entry{}).first;
    in_flight_order_.push_back(it->first);
    it->second.order = std::prev(in_flight_order_.end());
  }
  Entry& entry = it->second;
  // Move the order node to the done list (no allocation, iterators stay valid).
  done_order_.splice(done_order_.end(), entry.done ? done_order_ : in_flight_order_, entry.order);
  entry.done = true;
  entry.result = result;
  entry.expires_at = now + window_;
  ExpireLocked(now);
  EvictLocked();
}

void IdempotencyCache::Abandon(absl::string_view request_id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(request_id);
  if (it != entries_.end() && !it->second.done) EraseLocked(it);
}

size_t IdempotencyCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace pushgate::pusher
