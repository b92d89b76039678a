// A pusher::ProviderClient that keeps every push until the test answers it. Thread-safe; `done`
// runs on the answering thread, outside the lock.
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "pusher/provider/provider_client.h"

namespace pushgate {

class FakeProviderClient final : public pusher::ProviderClient {
 public:
  void Send(v1::PushRequest request, absl::Time deadline, pusher::ResultCallback done) override {
    std::lock_guard lock(mu_);
    sent_.push_back(request);
    pending_.push_back({std::move(request), std::move(done)});
  }
  std::string Problem() const override { return ""; }
  void Drain(absl::Duration) override {}

  // Every push sent so far, in order.
  std::vector<v1::PushRequest> sent() const {
    std::lock_guard lock(mu_);
    return sent_;
  }
  size_t pending() const {
    std::lock_guard lock(mu_);
    return pending_.size();
  }
  // Answers the oldest pending push with `outcome` (its request id filled in); false when none.
  bool Answer(v1::Outcome outcome, std::string reason = "") {
    v1::PushResult result;
    result.set_outcome(outcome);
    result.set_reason(std::move(reason));
    result.set_attempts(1);
    return Answer(absl::StatusOr<v1::PushResult>(std::move(result)));
  }
  bool Answer(absl::StatusOr<v1::PushResult> result) {
    pusher::ResultCallback done;
    {
      std::lock_guard lock(mu_);
      if (pending_.empty()) return false;
      if (result.ok()) result->set_request_id(pending_.front().request.request_id());
      done = std::move(pending_.front().done);
      pending_.pop_front();
    }
    done(std::move(result));
    return true;
  }

 private:
  struct Pending {
    v1::PushRequest request;
    pusher::ResultCallback done;
  };
  mutable std::mutex mu_;
  std::vector<v1::PushRequest> sent_;
  std::deque<Pending> pending_;
};

}  // namespace pushgate
