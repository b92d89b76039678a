#include "pusher/core/idempotency.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace pushgate::pusher {
namespace {

using State = IdempotencyCache::State;
const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

v1::PushResult Result(const std::string& id, v1::Outcome outcome) {
  v1::PushResult r;
  r.set_request_id(id);
  r.set_outcome(outcome);
  return r;
}

TEST(IdempotencyCache, NewThenInFlightThenDone) {
  IdempotencyCache cache(absl::Minutes(5), 100);
  EXPECT_EQ(cache.Begin("a", kT0).state, State::kNew);
  EXPECT_EQ(cache.Begin("a", kT0).state, State::kInFlight);
  cache.Complete("a", Result("a", v1::TOKEN_INVALID), kT0 + absl::Seconds(1));
  IdempotencyCache::BeginResult r = cache.Begin("a", kT0 + absl::Seconds(2));
  EXPECT_EQ(r.state, State::kDone);
  EXPECT_EQ(r.result.outcome(), v1::TOKEN_INVALID);
  EXPECT_EQ(r.result.request_id(), "a");
  EXPECT_EQ(cache.Begin("b", kT0).state, State::kNew);
}

TEST(IdempotencyCache, ExpiresAfterWindowFromCompletion) {
  IdempotencyCache cache(absl::Minutes(5), 100);
  cache.Begin("a", kT0);
  absl::Time done = kT0 + absl::Seconds(30);
  cache.Complete("a", Result("a", v1::ACCEPTED), done);
  EXPECT_EQ(cache.Begin("a", done + absl::Minutes(5) - absl::Seconds(1)).state, State::kDone);
  EXPECT_EQ(cache.Begin("a", done + absl::Minutes(5)).state, State::kNew);
}

TEST(IdempotencyCache, BoundedEvictsOldestCompletedFirst) {
  IdempotencyCache cache(absl::Minutes(5), 3);
  cache.Begin("inflight", kT0);
  cache.Begin("old", kT0);
  cache.Complete("old", Result("old", v1::ACCEPTED), kT0);
  cache.Begin("newer", kT0);
  cache.Complete("newer", Result("newer", v1::ACCEPTED), kT0 + absl::Seconds(1));
  EXPECT_EQ(cache.size(), 3u);
  cache.Begin("x", kT0 + absl::Seconds(2));  // 4 > 3: evicts "old"
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Begin("inflight", kT0 + absl::Seconds(3)).state, State::kInFlight);
  EXPECT_EQ(cache.Begin("newer", kT0 + absl::Seconds(3)).state, State::kDone);
  EXPECT_EQ(cache.Begin("old", kT0 + absl::Seconds(3)).state, State::kNew);
}

TEST(IdempotencyCache, ManyIdsStayBounded) {
  IdempotencyCache cache(absl::Hours(1), 50);
  for (int i = 0; i < 1000; ++i) {
    std::string id = absl::StrCat("id-", i);
    cache.Begin(id, kT0);
    cache.Complete(id, Result(id, v1::ACCEPTED), kT0);
    EXPECT_LE(cache.size(), 50u);
  }
  EXPECT_EQ(cache.Begin("id-999", kT0).state, State::kDone);
  EXPECT_EQ(cache.Begin("id-0", kT0).state, State::kNew);
}

TEST(IdempotencyCache, AbandonAllowsRetryAndEmptyIdNeverRecorded) {
  IdempotencyCache cache(absl::Minutes(5), 10);
  cache.Begin("a", kT0);
  cache.Abandon("a");
  EXPECT_EQ(cache.Begin("a", kT0).state, State::kNew);
  EXPECT_EQ(cache.Begin("", kT0).state, State::kNew);
  EXPECT_EQ(cache.Begin("", kT0).state, State::kNew);
  cache.Complete("", Result("", v1::ACCEPTED), kT0);
  EXPECT_EQ(cache.size(), 1u);
  // Abandon does not drop a completed result.
  cache.Complete("a", Result("a", v1::ACCEPTED), kT0);
  cache.Abandon("a");
  EXPECT_EQ(cache.Begin("a", kT0).state, State::kDone);
}

TEST(IdempotencyCache, CompleteAfterEvictionStillRemembers) {
  IdempotencyCache cache(absl::Minutes(5), 2);
  cache.Begin("a", kT0);
  cache.Begin("b", kT0);
  cache.Begin("c", kT0);  // evicts in-flight "a" (no completed entry to evict)
  EXPECT_EQ(cache.size(), 2u);
  cache.Complete("b", Result("b", v1::ACCEPTED), kT0);
  cache.Complete("a", Result("a", v1::REJECTED), kT0 + absl::Seconds(1));  // evicts done "b"
  EXPECT_EQ(cache.size(), 2u);
  IdempotencyCache::BeginResult a = cache.Begin("a", kT0 + absl::Seconds(2));
  EXPECT_EQ(a.state, State::kDone);
  EXPECT_EQ(a.result.outcome(), v1::REJECTED);
  EXPECT_EQ(cache.Begin("c", kT0 + absl::Seconds(2)).state, State::kInFlight);
}

// Random operations against a plain model of the documented behaviour (ordered by Begin /
// Complete time, completed evicted first, expiry after the window).
TEST(IdempotencyCache, MatchesAModelUnderRandomOperations) {
  struct ModelEntry {
    bool done = false;
    absl::Time expires_at;
    v1::Outcome outcome = v1::OUTCOME_UNSPECIFIED;
    uint64_t order = 0;  // Begin order while in flight, Complete order once done
  };
  const size_t kMax = 20;
  const absl::Duration kWindow = absl::Seconds(30);
  IdempotencyCache cache(kWindow, kMax);
  std::map<std::string, ModelEntry> model;
  uint64_t seq = 0;
  absl::Time now = kT0;
  std::mt19937 rng(7);
  auto expire = [&] {
    for (auto it = model.begin(); it != model.end();) {
      it = it->second.done && it->second.expires_at <= now ? model.erase(it) : std::next(it);
    }
  };
  auto evict = [&] {
    while (model.size() > kMax) {
      auto victim = model.end();
      bool any_done = false;
      for (const auto& [k, e] : model) any_done |= e.done;
      for (auto it = model.begin(); it != model.end(); ++it) {
        if (it->second.done != any_done) continue;
        if (victim == model.end() || it->second.order < victim->second.order) victim = it;
      }
      model.erase(victim);
    }
  };
  for (int step = 0; step < 20000; ++step) {
    now += absl::Milliseconds(rng() % 500);
    std::string id = absl::StrCat("request-id-long-enough-to-allocate-", rng() % 40);
    switch (rng() % 4) {
      case 0:
      case 1: {
        IdempotencyCache::BeginResult got = cache.Begin(id, now);
        expire();
        auto it = model.find(id);
        State want = it == model.end() ? State::kNew
                     : it->second.done ? State::kDone
                                       : State::kInFlight;
        ASSERT_EQ(got.state, want) << "step " << step << " id " << id;
        if (want == State::kDone) {
          EXPECT_EQ(got.result.outcome(), it->second.outcome);
          EXPECT_EQ(got.result.request_id(), id);
        }
        if (want == State::kNew) {
          model[id] = ModelEntry{false, absl::InfiniteFuture(), v1::OUTCOME_UNSPECIFIED, ++seq};
          evict();
        }
        break;
      }
      case 2: {
        v1::Outcome outcome = rng() % 2 ? v1::ACCEPTED : v1::TOKEN_INVALID;
        cache.Complete(id, Result(id, outcome), now);
        auto& e = model[id];
        e = ModelEntry{true, now + kWindow, outcome, ++seq};
        expire();
        evict();
        break;
      }
      default: {
        cache.Abandon(id);
        auto it = model.find(id);
        if (it != model.end() && !it->second.done) model.erase(it);
      }
    }
    ASSERT_EQ(cache.size(), model.size()) << "step " << step;
  }
}

TEST(IdempotencyCache, ConcurrentBeginGivesOneNew) {
  IdempotencyCache cache(absl::Minutes(5), 1000);
  std::atomic<int> news{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 100; ++j) {
        if (cache.Begin(absl::StrCat("id", j), kT0).state == State::kNew) ++news;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(news.load(), 100);
}

}  // namespace
}  // namespace pushgate::pusher
