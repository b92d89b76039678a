// pusher_bench: load generator for pushgate-pusher's SendStream API.
//
// Opens K SendStream calls (spread over C channels, i.e. C HTTP/2 connections) and either
//   closed loop:  sends N pushes as fast as the pusher answers, at most W unanswered per stream
//                 (a full window is refilled once F = --refill pushes were answered, F writes
//                 coalesced into one flush, rather than one write and syscall per answer);
//   open loop:    sends R pushes per second for D seconds on a fixed schedule (independent of the
//                 answers, so a slow pusher cannot slow the load down and hide its latency).
// Every push is an APNs VoIP push with a fresh UUID v4 request_id and a random 64-hex token;
// results are matched to requests by request_id. Latency runs from the moment the push is handed to
// its stream (closed loop: StartWrite; open loop: the pacer releases due pushes every tick, and a
// push waiting behind earlier writes of its stream counts that wait) to its result.
//
// Prints one line on stdout:
//   RESULT mode=closed|open streams=K sent=N answered=M accepted=A errors=E elapsed_s=T
//          pushes_per_s=A/T p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. outcomes=NAME:n,...
// and, on stderr, the most frequent error reasons. Exit code 0 when every push was answered.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "pushgate/v1/pusher.grpc.pb.h"
#include "pushgate/v1/pusher.pb.h"

namespace {

namespace v1 = pushgate::v1;
using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::string target = "127.0.0.1:50061";
  int streams = 4;
  int channels = 1;
  int64_t count = 0;  // closed loop when > 0
  int window = 200;   // closed loop: unanswered pushes per stream
  int refill = -1;    // closed loop: a full window refills once this many are answered (-1: W/10)
  double rate = 0;    // open loop when > 0 (pushes per second, all streams together)
  double duration_s = 10;
  std::string app = "TEAM123456.com.example.phone.voip";
  int tokens = 1000;
  double timeout_s = 120;
  std::string api_key;
  bool coalesce = true;
  int tick_us = 1000;  // open loop: the pacer hands due pushes to the streams this often
};

constexpr char kUsage[] =
    "usage: pusher_bench --target HOST:PORT [--streams K] [--channels C] [--app APP]\n"
    "                    (--count N [--window W] [--refill F] | --rate R --duration D)\n"
    "                    [--tokens T]\n"
    "                    [--timeout S] [--api-key KEY] [--coalesce 0|1] [--tick-us U]\n"
    "  --count N     closed loop: send N pushes, at most W unanswered per stream (default 200)\n"
    "  --refill F    closed loop: once the window is full, send again when F pushes were\n"
    "                answered, F at once (default W/10; 1: one push per answer)\n"
    "  --rate R      open loop: R pushes/s over all streams for D seconds (default 10)\n"
    "  --app APP     destination app (RFC 8599 pn-param), default "
    "TEAM123456.com.example.phone.voip\n"
    "  --tokens T    distinct random device tokens (default 1000)\n"
    "  --coalesce 1  let gRPC buffer writes that are followed by more at once (default 1)\n"
    "  --tick-us U   open loop: hand due pushes to the streams every U us (default 1000)\n";

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return false;
    if (i + 1 >= argc) {
      std::fprintf(stderr, "pusher_bench: %s needs a value\n", arg.c_str());
      return false;
    }
    std::string value = argv[++i];
    bool ok = true;
    if (arg == "--target") {
      o->target = value;
    } else if (arg == "--app") {
      o->app = value;
    } else if (arg == "--api-key") {
      o->api_key = value;
    } else if (arg == "--streams") {
      ok = absl::SimpleAtoi(value, &o->streams) && o->streams > 0;
    } else if (arg == "--channels") {
      ok = absl::SimpleAtoi(value, &o->channels) && o->channels > 0;
    } else if (arg == "--count") {
      ok = absl::SimpleAtoi(value, &o->count) && o->count > 0;
    } else if (arg == "--window") {
      ok = absl::SimpleAtoi(value, &o->window) && o->window > 0;
    } else if (arg == "--refill") {
      ok = absl::SimpleAtoi(value, &o->refill) && o->refill > 0;
    } else if (arg == "--rate") {
      ok = absl::SimpleAtod(value, &o->rate) && o->rate > 0;
    } else if (arg == "--duration") {
      ok = absl::SimpleAtod(value, &o->duration_s) && o->duration_s > 0;
    } else if (arg == "--tick-us") {
      ok = absl::SimpleAtoi(value, &o->tick_us) && o->tick_us > 0;
    } else if (arg == "--coalesce") {
      ok = value == "0" || value == "1";
      o->coalesce = value == "1";
    } else if (arg == "--tokens") {
      ok = absl::SimpleAtoi(value, &o->tokens) && o->tokens > 0;
    } else if (arg == "--timeout") {
      ok = absl::SimpleAtod(value, &o->timeout_s) && o->timeout_s > 0;
    } else {
      std::fprintf(stderr, "pusher_bench: unknown flag %s\n", arg.c_str());
      return false;
    }
    if (!ok) {
      std::fprintf(stderr, "pusher_bench: bad value '%s' for %s\n", value.c_str(), arg.c_str());
      return false;
    }
  }
  if ((o->count > 0) == (o->rate > 0)) {
    std::fprintf(stderr, "pusher_bench: give exactly one of --count and --rate\n");
    return false;
  }
  if (o->channels > o->streams) o->channels = o->streams;
  if (o->refill < 0) o->refill = std::max(1, o->window / 10);
  if (o->refill > o->window) o->refill = o->window;
  return true;
}

constexpr char kHex[] = "0123456789abcdef";

// A random version 4 UUID, lower case.
std::string NewUuid(std::mt19937_64& rng) {
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & ~0xf000ULL) | 0x4000ULL;              // version 4
  lo = (lo & ~(0xc0ULL << 56)) | (0x80ULL << 56);  // variant 10
  std::string out(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      out[pos++] = kHex[(v >> (4 * i)) & 0xf];
    }
  };
  put(hi, 16);
  put(lo, 16);
  return out;
}

// Per-stream results, merged at the end.
struct StreamStats {
  std::vector<int64_t> latencies_ns;  // accepted and rejected alike: every answered push
  std::map<int, int64_t> outcomes;
  std::map<std::string, int64_t> error_reasons;
  int64_t sent = 0;
  int64_t answered = 0;
  int64_t unmatched = 0;  // results naming a request_id we never sent (or answered twice)
  int64_t first_send_ns = 0;
  int64_t last_result_ns = 0;
};

class Bench;

// One SendStream call. Writes are issued one at a time (gRPC allows one outstanding write);
// reads run continuously.
class StreamClient final : public grpc::ClientBidiReactor<v1::PushRequest, v1::PushResult> {
 public:
  StreamClient(const Options& options, const std::vector<std::string>& tokens, int index,
               int64_t quota)
      : options_(options),
        tokens_(tokens),
        rng_(std::random_device{}() ^ (index * 0x9e3779b9ULL)),
        quota_(quota),
        closed_loop_(options.count > 0) {
    stats_.latencies_ns.reserve(static_cast<size_t>(quota));
    pending_.reserve(static_cast<size_t>(closed_loop_ ? options.window * 2 : 4096));
  }

  void Start(v1::Pusher::Stub* stub) {
    context_.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(options_.timeout_s * 1e3)));
    if (!options_.api_key.empty()) context_.AddMetadata("x-api-key", options_.api_key);
    stub->async()->SendStream(&context_, this);
    AddHold();  // writes are started from outside reactions (the pacer); released when done
    StartRead(&result_);
    StartCall();
    if (closed_loop_) Pump();
  }

  // Open loop: pushes released at these times (ns) are queued.
  void Enqueue(const std::vector<int64_t>& due_ns) {
    {
      std::lock_guard lock(mu_);
      for (int64_t t : due_ns) due_.push_back(t);
    }
    Pump();
  }
  // Open loop: nothing more will be enqueued.
  void NoMore() {
    {
      std::lock_guard lock(mu_);
      no_more_ = true;
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) write_failed_ = true;
    }
    Pump();
  }

  void OnWritesDoneDone(bool /*ok*/) override {}

  void OnReadDone(bool ok) override {
    if (!ok) {  // the call ends: stop writing, OnDone follows
      {
        std::lock_guard lock(mu_);
        write_failed_ = true;
      }
      Pump();
      return;
    }
    const int64_t now = NowNs();
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(result_.request_id());
      if (it == pending_.end()) {
        ++stats_.unmatched;
      } else {
        stats_.latencies_ns.push_back(now - it->second);
        pending_.erase(it);
        ++stats_.answered;
        ++stats_.outcomes[result_.outcome()];
        if (result_.outcome() != v1::ACCEPTED) {
          ++stats_.error_reasons[absl::StrCat(v1::Outcome_Name(result_.outcome()), " ",
                                              result_.provider_status(), " ", result_.reason())];
        }
        stats_.last_result_ns = now;
      }
    }
    StartRead(&result_);
    if (closed_loop_) Pump();
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard lock(mu_);
    final_status_ = status;
    done_ = true;
    done_cv_.notify_all();
  }

  // Blocks until the call ended; returns its status.
  grpc::Status Wait() {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [this] { return done_; });
    return final_status_;
  }

  const StreamStats& stats() const { return stats_; }    // after Wait()
  size_t unanswered() const { return pending_.size(); }  // after Wait()

 private:
  // Starts the next write if one is allowed, or half-closes once everything was sent.
  void Pump() {
    enum { kNothing, kWrite, kWritesDone } action = kNothing;
    grpc::WriteOptions write_options;
    {
      std::lock_guard lock(mu_);
      if (writing_ || writes_done_) return;
      if (write_failed_) {
        writes_done_ = true;
        action = kWritesDone;
      } else if (stats_.sent < quota_) {
        int64_t due = 0;
        bool can_send;
        if (closed_loop_) {
          // Refill a full window in bursts (one write per answer would make the client
          // flush, and the pusher read, one message per syscall): hysteresis of --refill.
          const auto pending = static_cast<int64_t>(pending_.size());
          if (pending >= options_.window) refilling_ = false;
          if (pending <= options_.window - options_.refill) refilling_ = true;
          can_send = refilling_ && pending < options_.window;
        } else {
          can_send = !due_.empty();
          if (can_send) {
            due = due_.front();
            due_.pop_front();
          }
        }
        if (can_send) {
          BuildRequestLocked();
          const int64_t now = NowNs();
          if (stats_.sent == 0) stats_.first_send_ns = now;
          pending_[request_.request_id()] = closed_loop_ ? now : due;
          ++stats_.sent;
          writing_ = true;
          action = kWrite;
          // More writes follow at once: let gRPC coalesce them (the last one of a burst, sent
          // without the hint, flushes them all).
          const bool more = stats_.sent < quota_ &&
                            (closed_loop_ ? static_cast<int64_t>(pending_.size()) < options_.window
                                          : !due_.empty());
          if (more && options_.coalesce) write_options.set_buffer_hint();
        }
      }
      if (action == kNothing && (stats_.sent >= quota_ || (no_more_ && due_.empty()))) {
        writes_done_ = true;
        action = kWritesDone;
      }
    }
    if (action == kWrite) {
      StartWrite(&request_, write_options);
    } else if (action == kWritesDone) {
      StartWritesDone();
      RemoveHold();
    }
  }

  void BuildRequestLocked() {
    request_.set_request_id(NewUuid(rng_));
    auto* dest = request_.mutable_destination();
    dest->set_provider(v1::APNS);
    dest->set_app(options_.app);
    dest->set_device_token(tokens_[rng_() % tokens_.size()]);
    request_.set_kind(v1::VOIP);
    request_.set_call_id(absl::StrCat("bench-", stats_.sent, "@example.org"));
    request_.set_caller_uri("sip:alice@example.org");
    request_.set_caller_display_name("Alice");
    request_.set_badge(-1);
  }

  const Options& options_;
  const std::vector<std::string>& tokens_;
  std::mt19937_64 rng_;
  const int64_t quota_;
  const bool closed_loop_;
  grpc::ClientContext context_;
  v1::PushRequest request_;  // the write in progress
  v1::PushResult result_;    // the read in progress

  std::mutex mu_;
  std::condition_variable done_cv_;
  absl::flat_hash_map<std::string, int64_t> pending_;  // request_id -> start time (ns)
  std::deque<int64_t> due_;  // open loop: release times of pushes not yet written
  StreamStats stats_;
  bool writing_ = false;
  bool refilling_ = true;  // closed loop: the window is being (re)filled
  bool write_failed_ = false;
  bool writes_done_ = false;
  bool no_more_ = false;
  bool done_ = false;
  grpc::Status final_status_;
};

// CPU time (user + system) this process used so far.
double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t idx = static_cast<size_t>(std::lround(p * static_cast<double>(sorted.size() - 1)));
  return static_cast<double>(sorted[std::min(idx, sorted.size() - 1)]) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG: without this every absl::Mutex lock inside gRPC
  // runs the debug deadlock detector (the pusher turns it off too).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Options options;
  if (!ParseOptions(argc, argv, &options)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const bool closed_loop = options.count > 0;
  const int64_t total =
      closed_loop ? options.count : static_cast<int64_t>(options.rate * options.duration_s);

  std::mt19937_64 rng(std::random_device{}());
  std::vector<std::string> tokens;
  for (int i = 0; i < options.tokens; ++i) {
    std::string t(64, '0');
    for (char& c : t) c = kHex[rng() & 0xf];
    tokens.push_back(std::move(t));
  }

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::Pusher::Stub>> stubs;
  for (int c = 0; c < options.channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    channels.push_back(
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(10))) {
      std::fprintf(stderr, "pusher_bench: cannot connect to %s within 10 s\n",
                   options.target.c_str());
      return 1;
    }
    stubs.push_back(v1::Pusher::NewStub(channels.back()));
  }

  std::vector<std::unique_ptr<StreamClient>> clients;
  for (int s = 0; s < options.streams; ++s) {
    int64_t quota = total / options.streams + (s < total % options.streams ? 1 : 0);
    clients.push_back(std::make_unique<StreamClient>(options, tokens, s, quota));
  }
  const int64_t start_ns = NowNs();
  for (int s = 0; s < options.streams; ++s) clients[s]->Start(stubs[s % options.channels].get());

  if (!closed_loop) {
    // Pacer: every push has a due time start + i / rate; stream i % K sends it.
    const double interval_ns = 1e9 / options.rate;
    int64_t issued = 0;
    std::vector<std::vector<int64_t>> batch(options.streams);
    while (issued < total) {
      const int64_t now = NowNs();
      for (auto& b : batch) b.clear();
      while (issued < total) {
        int64_t due = start_ns + static_cast<int64_t>(static_cast<double>(issued) * interval_ns);
        if (due > now) break;
        batch[issued % options.streams].push_back(now);  // released now: latency starts
        ++issued;
      }
      for (int s = 0; s < options.streams; ++s) {
        if (!batch[s].empty()) clients[s]->Enqueue(batch[s]);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(options.tick_us));
    }
    for (auto& c : clients) c->NoMore();
  }

  std::vector<int64_t> latencies;
  std::map<int, int64_t> outcomes;
  std::map<std::string, int64_t> reasons;
  int64_t sent = 0, answered = 0, unmatched = 0, unanswered = 0;
  int64_t first_ns = INT64_MAX, last_ns = 0;
  int stream_errors = 0;
  for (auto& c : clients) {
    grpc::Status status = c->Wait();
    if (!status.ok()) {
      ++stream_errors;
      std::fprintf(stderr, "pusher_bench: stream ended with %d %s\n",
                   static_cast<int>(status.error_code()), status.error_message().c_str());
    }
    const StreamStats& st = c->stats();
    latencies.insert(latencies.end(), st.latencies_ns.begin(), st.latencies_ns.end());
    for (const auto& [k, v] : st.outcomes) outcomes[k] += v;
    for (const auto& [k, v] : st.error_reasons) reasons[k] += v;
    sent += st.sent;
    answered += st.answered;
    unmatched += st.unmatched;
    unanswered += static_cast<int64_t>(c->unanswered());
    if (st.sent > 0) first_ns = std::min(first_ns, st.first_send_ns);
    last_ns = std::max(last_ns, st.last_result_ns);
  }
  std::sort(latencies.begin(), latencies.end());
  const int64_t accepted = outcomes.count(v1::ACCEPTED) ? outcomes[v1::ACCEPTED] : 0;
  const int64_t errors = (answered - accepted) + unmatched + unanswered;
  const double elapsed_s = last_ns > first_ns ? static_cast<double>(last_ns - first_ns) / 1e9 : 0;
  std::vector<std::string> outcome_parts;
  outcome_parts.reserve(outcomes.size() + 2);
  for (const auto& [k, v] : outcomes) {
    outcome_parts.push_back(absl::StrCat(v1::Outcome_Name(static_cast<v1::Outcome>(k)), ":", v));
  }
  if (unanswered > 0) outcome_parts.push_back(absl::StrCat("UNANSWERED:", unanswered));
  if (unmatched > 0) outcome_parts.push_back(absl::StrCat("UNMATCHED:", unmatched));

  std::vector<std::pair<int64_t, std::string>> top;
  top.reserve(reasons.size());
  for (const auto& [k, v] : reasons) top.emplace_back(v, k);
  std::sort(top.rbegin(), top.rend());
  for (size_t i = 0; i < top.size() && i < 5; ++i) {
    std::fprintf(stderr, "pusher_bench: %lld x %s\n", static_cast<long long>(top[i].first),
                 top[i].second.c_str());
  }

  std::printf(
      "RESULT mode=%s streams=%d channels=%d sent=%lld answered=%lld accepted=%lld errors=%lld "
      "elapsed_s=%.3f pushes_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      "stream_errors=%d cpu_us_per_push=%.1f outcomes=%s\n",
      closed_loop ? "closed" : "open", options.streams, options.channels,
      static_cast<long long>(sent), static_cast<long long>(answered),
      static_cast<long long>(accepted), static_cast<long long>(errors), elapsed_s,
      elapsed_s > 0 ? static_cast<double>(accepted) / elapsed_s : 0.0, Percentile(latencies, 0.50),
      Percentile(latencies, 0.90), Percentile(latencies, 0.99),
      latencies.empty() ? 0.0 : static_cast<double>(latencies.back()) / 1e6, stream_errors,
      sent > 0 ? CpuSeconds() * 1e6 / static_cast<double>(sent) : 0.0,
      outcome_parts.empty() ? "none" : absl::StrJoin(outcome_parts, ",").c_str());
  std::fflush(stdout);
  return (unanswered == 0 && stream_errors == 0 && sent == total) ? 0 : 1;
}
