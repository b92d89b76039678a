// A bounded, thread-safe free list of protobuf messages. A message parsed into an object that
// already holds strings reuses their memory (parsing clears, and clearing keeps a string's
// memory; it does delete sub-messages), so a push read into a recycled PushRequest allocates
// nothing for its top-level strings (request id, call fields). Messages are handed on by moves,
// which swap their internals.
#pragma once

#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

template <typename Message>
class Recycler final {
 public:
  explicit Recycler(size_t capacity) : capacity_(capacity) { free_.reserve(capacity); }
  Recycler(const Recycler&) = delete;
  Recycler& operator=(const Recycler&) = delete;

  // A recycled message (its content is stale: parse into it, or Clear() it), or a new one.
  Message Take() {
    std::lock_guard lock(mu_);
    if (free_.empty()) return Message();
    Message out(std::move(free_.back()));  // a swap of internals
    free_.pop_back();
    return out;
  }

  // Keeps `message` for a later Take() unless the list is full (then it is destroyed).
  void Give(Message&& message) {
    std::lock_guard lock(mu_);
    if (free_.size() < capacity_) free_.push_back(std::move(message));
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return free_.size();
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<Message> free_;
};

// The pusher's two per-push messages: a request is taken when the gRPC service reads one and
// given back when its provider client finished with it; a result is taken when a provider
// answered and given back once written to the caller. Bounded to about the pushes in flight.
struct PushMessageRecyclers {
  static constexpr size_t kCapacity = 4096;
  Recycler<v1::PushRequest> requests{kCapacity};
  Recycler<v1::PushResult> results{kCapacity};
};

}  // namespace pushgate::pusher
