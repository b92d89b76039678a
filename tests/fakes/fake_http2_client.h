// An http2::Client that keeps every submitted request until the test answers it (a response or
// a typed failure); destroyed, it fails what is still pending with kShutdown. Thread-safe;
// callbacks run on the thread that answers, outside the lock.
#pragma once

#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include "pusher/http2/client.h"

namespace pushgate {

class FakeHttp2Client final : public http2::Client {
 public:
  // Like the pool: what is still pending fails as shut down.
  ~FakeHttp2Client() override {
    while (Fail(http2::FailureReason::kShutdown, absl::UnavailableError("client shut down"))) {
    }
  }

  void Submit(http2::Request request, http2::ResponseCallback callback) override {
    std::lock_guard lock(mu_);
    submitted_.push_back(request);
    pending_.push_back({std::move(request), std::move(callback)});
  }
  void Drain(absl::Duration) override {
    std::lock_guard lock(mu_);
    ++drains_;
  }

  // Every request submitted so far, in order.
  std::vector<http2::Request> submitted() const {
    std::lock_guard lock(mu_);
    return submitted_;
  }
  size_t pending() const {
    std::lock_guard lock(mu_);
    return pending_.size();
  }
  int drains() const {
    std::lock_guard lock(mu_);
    return drains_;
  }

  // Answers the oldest pending request; false when none is pending.
  bool Respond(int status, std::string body = "",
               std::vector<std::pair<std::string, std::string>> headers = {}) {
    http2::Response response;
    response.status = status;
    response.body = std::move(body);
    response.headers = std::move(headers);
    return Answer(http2::Result(std::move(response)));
  }
  bool Fail(http2::FailureReason reason, absl::Status status) {
    return Answer(http2::Result(reason, std::move(status)));
  }

 private:
  struct Pending {
    http2::Request request;
    http2::ResponseCallback callback;
  };
  bool Answer(http2::Result result) {
    http2::ResponseCallback callback;
    {
      std::lock_guard lock(mu_);
      if (pending_.empty()) return false;
      callback = std::move(pending_.front().callback);
      pending_.pop_front();
    }
    callback(std::move(result));
    return true;
  }

  mutable std::mutex mu_;
  std::vector<http2::Request> submitted_;
  std::deque<Pending> pending_;
  int drains_ = 0;
};

}  // namespace pushgate
