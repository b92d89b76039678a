#include "pusher/core/idempotency.h"

#include <algorithm>

namespace pushgate::pusher {

void IdempotencyCache::AgeList::PushNewest(Entry* e) {
  e->older = newest;
  e->newer = nullptr;
  if (newest != nullptr) {
    newest->newer = e;
  } else {
    oldest = e;
  }
  newest = e;
}

void IdempotencyCache::AgeList::Unlink(Entry* e) {
  (e->older != nullptr ? e->older->newer : oldest) = e->newer;
  (e->newer != nullptr ? e->newer->older : newest) = e->older;
  e->older = e->newer = nullptr;
}

IdempotencyCache::IdempotencyCache(absl::Duration window, size_t max_entries)
    : window_(window), max_entries_(std::max<size_t>(max_entries, 1)) {
  // Full, the cache erases and inserts an id per push: at a load near the table's maximum the
  // erased slots become tombstones and the table rehashes in place every few thousand pushes.
  // Twice the room keeps erased slots reusable (bounded: 2^20 slots are about 9 MB).
  entries_.reserve(std::min<size_t>(2 * max_entries_, size_t{1} << 20));
}

IdempotencyCache::~IdempotencyCache() = default;

void IdempotencyCache::EraseLocked(Entry* entry) {
  (entry->done ? done_ : in_flight_).Unlink(entry);
  auto it = entries_.find(*entry->key);
  entries_.erase(it);
}

void IdempotencyCache::ExpireLocked(absl::Time now) {
  // done_ is sorted by completion time as long as `now` does not go backwards; an entry
  // completed with an earlier `now` only expires a little late.
  while (done_.oldest != nullptr && done_.oldest->expires_at <= now) EraseLocked(done_.oldest);
}

void IdempotencyCache::EvictLocked() {
  while (entries_.size() > max_entries_) {
    EraseLocked(done_.oldest != nullptr ? done_.oldest : in_flight_.oldest);
  }
}

IdempotencyCache::Entry* IdempotencyCache::InsertInFlightLocked(absl::string_view request_id) {
  auto [it, inserted] = entries_.try_emplace(request_id);
  Entry* entry = &it->second;
  entry->key = &it->first;
  in_flight_.PushNewest(entry);
  return entry;
}

IdempotencyCache::BeginResult IdempotencyCache::Begin(absl::string_view request_id,
                                                      absl::Time now) {
  BeginResult out;
  if (request_id.empty()) return out;
  absl::MutexLock lock(&mu_);
  ExpireLocked(now);
  if (entries_.size() >= max_entries_) {
    if (auto it = entries_.find(request_id); it != entries_.end()) return Known(it->second);
    // Full: the oldest entry's node (key and result memory included) takes the new id.
    Entry* oldest = done_.oldest != nullptr ? done_.oldest : in_flight_.oldest;
    (oldest->done ? done_ : in_flight_).Unlink(oldest);
    Map::node_type node = entries_.extract(entries_.find(*oldest->key));
    node.key().assign(request_id.data(), request_id.size());
    node.mapped().done = false;
    node.mapped().expires_at = absl::InfiniteFuture();
    auto inserted = entries_.insert(std::move(node));
    Entry* entry = &inserted.position->second;
    entry->key = &inserted.position->first;
    in_flight_.PushNewest(entry);
    return out;
  }
  // One lookup for both cases: almost every id is new.
  auto [it, inserted] = entries_.try_emplace(request_id);
  if (!inserted) return Known(it->second);
  Entry* entry = &it->second;
  entry->key = &it->first;
  in_flight_.PushNewest(entry);
  return out;
}

IdempotencyCache::BeginResult IdempotencyCache::Known(const Entry& entry) {
  BeginResult out;
  if (entry.done) {
    out.state = State::kDone;
    out.result.ParseFromString(entry.result);
  } else {
    out.state = State::kInFlight;
  }
  return out;
}

void IdempotencyCache::Complete(absl::string_view request_id, const v1::PushResult& result,
                                absl::Time now) {
  if (request_id.empty()) return;
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(request_id);
  // Evicted while in flight (or never begun): remember the result anyway.
  Entry* entry = it != entries_.end() ? &it->second : InsertInFlightLocked(request_id);
  (entry->done ? done_ : in_flight_).Unlink(entry);
  done_.PushNewest(entry);
  entry->done = true;
  result.SerializeToString(&entry->result);
  entry->expires_at = now + window_;
  ExpireLocked(now);
  EvictLocked();
}

void IdempotencyCache::Abandon(absl::string_view request_id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(request_id);
  if (it != entries_.end() && !it->second.done) EraseLocked(&it->second);
}

size_t IdempotencyCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace pushgate::pusher
