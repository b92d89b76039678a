// The HTTP/2 pool against a real nghttp2 TLS server on 127.0.0.1 (test_server.h).
#include "pusher/http2/pool.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/http2/fake_dns.h"
#include "tests/integration/http2/test_server.h"

namespace pushgate::http2 {
namespace {

using testing::FakeDns;
using ::testing::HasSubstr;
using testing::MakeSelfSignedCert;
using testing::ReceivedRequest;
using testing::TestCert;
using testing::TestServer;
using testing::TestServerOptions;

// Collects callback results by request index; counts every invocation.
class Results {
 public:
  ResponseCallback Callback(int index) {
    return [this, index](Result r) {
      std::lock_guard<std::mutex> l(mu_);
      results_[index].push_back(std::move(r));
      ++calls_;
      cv_.notify_all();
    };
  }
  ::testing::AssertionResult WaitFor(size_t n, absl::Duration timeout = absl::Seconds(20)) {
    std::unique_lock<std::mutex> l(mu_);
    if (cv_.wait_for(l, absl::ToChronoNanoseconds(timeout), [&] { return calls_ >= n; })) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "only " << calls_ << " of " << n << " callbacks arrived within "
           << absl::FormatDuration(timeout);
  }
  size_t calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  // The single result of request `index` (fails the test when called more than once).
  Result Get(int index) {
    std::lock_guard<std::mutex> l(mu_);
    auto& v = results_[index];
    EXPECT_EQ(v.size(), 1u) << "request " << index << " completed " << v.size() << " times";
    if (v.empty()) return Result(FailureReason::kNotSent, absl::InternalError("no result"));
    return v.front();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, std::vector<Result>> results_;
  size_t calls_ = 0;
};

// For the pool's Stats, which signal nothing when they change (a hook for tests would cost every
// push): checks every 5 ms. Everything that has an event (callbacks, the server's counts) waits
// on it instead.
::testing::AssertionResult Eventually(const std::function<bool()>& pred, absl::Duration timeout,
                                      const std::string& what) {
  absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (pred()) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return ::testing::AssertionFailure()
         << what << " did not happen within " << absl::FormatDuration(timeout);
}

class PoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/pushgate-http2-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto server = MakeSelfSignedCert(dir_, "server");
    ASSERT_TRUE(server.ok()) << server.status();
    server_cert_ = *server;
    auto other = MakeSelfSignedCert(dir_, "other");
    ASSERT_TRUE(other.ok()) << other.status();
    other_cert_ = *other;
    auto client = MakeSelfSignedCert(dir_, "client");
    ASSERT_TRUE(client.ok()) << client.status();
    client_cert_ = *client;
  }

  std::unique_ptr<TestServer> StartServer(TestServerOptions options) {
    options.cert = server_cert_;
    auto server = TestServer::Start(std::move(options));
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  PoolOptions Options(const TestServer& server) {
    PoolOptions o;
    o.base_url = server.base_url();
    o.tls.ca_file = server_cert_.cert_file;
    o.name = "test";
    o.connect_timeout = absl::Seconds(5);
    o.reconnect_backoff_initial = absl::Milliseconds(20);
    o.reconnect_backoff_max = absl::Milliseconds(200);
    return o;
  }

  std::unique_ptr<Pool> MakePool(PoolOptions options) {
    auto pool = Pool::Create(std::move(options));
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? std::move(*pool) : nullptr;
  }

  static Request Post(const std::string& id, absl::Duration timeout = absl::Seconds(15)) {
    Request r;
    r.path = "/3/device/" + id;
    r.headers = {{"x-id", id}};
    r.body = "{\"id\":\"" + id + "\"}";
    r.deadline = absl::Now() + timeout;
    return r;
  }

  static std::string dir_;
  static TestCert server_cert_, other_cert_, client_cert_;
};
std::string PoolTest::dir_;
TestCert PoolTest::server_cert_, PoolTest::other_cert_, PoolTest::client_cert_;

TEST_F(PoolTest, PostRoundTripCarriesHeadersAndBody) {
  auto server = StartServer({});
  auto pool = MakePool(Options(*server));
  ASSERT_NE(pool, nullptr);
  Results results;
  Request r;
  r.path = "/3/device/abcdef";
  r.headers = {{"Apns-Topic", "com.example.voip"}, {"authorization", "bearer xyz"}};
  r.body = "{\"aps\":{}}";
  r.deadline = absl::Now() + absl::Seconds(10);
  pool->Submit(r, results.Callback(0));
  Request get;
  get.method = "GET";
  get.path = "/status";
  get.headers = {{"x-status", "410"}};
  pool->Submit(get, results.Callback(1));
  ASSERT_TRUE(results.WaitFor(2));

  Result resp = results.Get(0);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->Header("X-Path"), "/3/device/abcdef");
  EXPECT_EQ(resp->body, "{\"aps\":{}}");
  Result gone = results.Get(1);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->status, 410);
  EXPECT_EQ(gone->body, "");

  Request bad;
  bad.path = "no-slash";
  pool->Submit(bad, results.Callback(2));
  ASSERT_TRUE(results.WaitFor(3));
  EXPECT_EQ(results.Get(2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(results.Get(2).reason(), FailureReason::kInvalidRequest);

  std::vector<ReceivedRequest> seen = server->requests();
  ASSERT_EQ(seen.size(), 2u);
  const ReceivedRequest& post = seen[0].path == "/3/device/abcdef" ? seen[0] : seen[1];
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.authority, absl::StrCat("127.0.0.1:", server->port()));
  EXPECT_EQ(post.Header("apns-topic"), "com.example.voip");
  EXPECT_EQ(post.Header("authorization"), "bearer xyz");
  EXPECT_EQ(post.body, "{\"aps\":{}}");
  EXPECT_EQ(server->connections_accepted(), 1);
}

TEST_F(PoolTest, ConcurrentRequestsRespectServerStreamLimitAndConnectionCap) {
  TestServerOptions so;
  so.max_concurrent_streams = 10;
  so.response_delay = absl::Milliseconds(20);
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.max_connections = 4;
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  constexpr int kN = 200;
  for (int i = 0; i < kN; ++i) pool->Submit(Post(absl::StrCat("c", i)), results.Callback(i));
  int max_conns = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        max_conns = std::max(max_conns, pool->GetStats().connections);
        return results.calls() >= kN;
      },
      absl::Seconds(20), "200 responses"));
  for (int i = 0; i < kN; ++i) {
    Result r = results.Get(i);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_LE(max_conns, 4);
  EXPECT_LE(server->connections_accepted(), 4);
  EXPECT_GE(server->connections_accepted(), 2) << "the pool never opened a second connection";
  EXPECT_LE(server->max_open_streams_seen(), 10);
  EXPECT_EQ(server->max_open_streams_seen(), 10) << "streams were not multiplexed up to the limit";
  EXPECT_EQ(server->requests().size(), static_cast<size_t>(kN));
  Pool::Stats stats = pool->GetStats();
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_EQ(stats.in_flight, 0u);
}

TEST_F(PoolTest, FullQueueAnswersResourceExhausted) {
  TestServerOptions so;
  so.max_concurrent_streams = 1;
  so.response_delay = absl::Milliseconds(100);
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.max_connections = 1;
  po.max_queue = 5;
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  constexpr int kN = 30;
  for (int i = 0; i < kN; ++i) pool->Submit(Post(absl::StrCat("q", i)), results.Callback(i));
  ASSERT_TRUE(results.WaitFor(kN));
  int ok = 0, exhausted = 0;
  for (int i = 0; i < kN; ++i) {
    Result r = results.Get(i);
    if (r.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("queue full (5 requests)"));
      EXPECT_EQ(r.reason(), FailureReason::kQueueFull);
      ++exhausted;
    }
  }
  // At most 5 queued plus 1 in flight can be accepted while the submitter outruns the server.
  EXPECT_GE(exhausted, kN - 6 - 2);
  EXPECT_GE(ok, 5);
  EXPECT_EQ(server->requests().size(), static_cast<size_t>(ok));
}

TEST_F(PoolTest, DeadlineExceededInFlightAndWhileQueued) {
  TestServerOptions so;
  so.max_concurrent_streams = 1;
  so.response_delay = absl::Seconds(3);
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.max_connections = 1;
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  absl::Time start = absl::Now();
  pool->Submit(Post("in-flight", absl::Milliseconds(300)), results.Callback(0));
  pool->Submit(Post("queued", absl::Milliseconds(200)), results.Callback(1));
  ASSERT_TRUE(results.WaitFor(2, absl::Seconds(2)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  Result first = results.Get(0);
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded) << first.status();
  EXPECT_THAT(std::string(first.status().message()), HasSubstr("may have been delivered"));
  EXPECT_EQ(first.reason(), FailureReason::kDeadlineAfterSent);
  Result second = results.Get(1);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("waiting for a free"));
  EXPECT_EQ(second.reason(), FailureReason::kDeadlineBeforeSent);
  EXPECT_TRUE(Eventually([&] { return pool->GetStats().in_flight == 0; }, absl::Seconds(2),
                         "in_flight back to 0"));
  // The reset stream freed the only slot: a new request goes through on the same connection.
  // (It still waits for the server's delay.)
  pool->Submit(Post("after", absl::Seconds(10)), results.Callback(2));
  ASSERT_TRUE(results.WaitFor(3, absl::Seconds(8)));
  Result third = results.Get(2);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->Header("x-connection"), "1");
  std::vector<ReceivedRequest> seen = server->requests();
  ASSERT_EQ(seen.size(), 2u) << "the queued request must never have been sent";
  EXPECT_EQ(seen[0].Header("x-id"), "in-flight");
  EXPECT_EQ(seen[1].Header("x-id"), "after");
}

// The pool keeps one timer for the earliest deadline: requests queued with deadlines in any
// order must each expire at their own time, not at a neighbour's.
TEST_F(PoolTest, QueuedDeadlinesInAnyOrderEachExpireOnTime) {
  TestServerOptions so;
  so.max_concurrent_streams = 1;
  so.response_delay = absl::Seconds(3);
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.max_connections = 1;
  std::mutex mu;
  std::map<int, absl::Duration> elapsed;
  std::map<int, absl::Status> statuses;
  Results results, expired;
  auto pool = MakePool(po);  // after what its callbacks use: destroyed first
  ASSERT_NE(pool, nullptr);
  pool->Submit(Post("blocker", absl::Seconds(10)), results.Callback(0));  // takes the only stream
  ASSERT_TRUE(Eventually([&] { return pool->GetStats().in_flight == 1; }, absl::Seconds(3),
                         "the blocker in flight"));
  const int kTimeoutsMs[] = {500, 150, 400, 150, 300, 250, 600, 200, 350, 450};
  const absl::Time start = absl::Now();
  for (int i = 0; i < 10; ++i) {
    pool->Submit(Post(absl::StrCat("q", i), absl::Milliseconds(kTimeoutsMs[i])),
                 [&, i, start, counted = expired.Callback(i)](Result r) {
                   {
                     std::lock_guard l(mu);
                     elapsed[i] = absl::Now() - start;
                     statuses[i] = r.status();
                   }
                   counted(std::move(r));
                 });
  }
  ASSERT_TRUE(expired.WaitFor(10, absl::Seconds(3))) << "queued requests expiring";
  std::lock_guard l(mu);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(statuses[i].code(), absl::StatusCode::kDeadlineExceeded) << i << statuses[i];
    EXPECT_GE(elapsed[i], absl::Milliseconds(kTimeoutsMs[i])) << "request " << i << " early";
    EXPECT_LT(elapsed[i], absl::Milliseconds(kTimeoutsMs[i] + 250)) << "request " << i << " late";
  }
}

// GOAWAY after N requests on every connection: all requests complete exactly once, the server
// processes each exactly once, unprocessed streams are replayed.
TEST_F(PoolTest, GoawayReplaysUnprocessedStreamsWithoutLossOrDuplicates) {
  TestServerOptions so;
  so.max_concurrent_streams = 10;
  so.response_delay = absl::Milliseconds(10);
  so.goaway_after_requests = 7;
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.max_connections = 2;
  po.name = "goaway";
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  metrics::Counter& replay_counter = metrics::Registry::Default().GetCounter(
      "pushgate_http2_goaway_replays_total", "", {{"pool", "goaway"}});
  metrics::Counter& ok_counter = metrics::Registry::Default().GetCounter(
      "pushgate_http2_requests_total", "", {{"pool", "goaway"}, {"result", "ok"}});
  const uint64_t replays_before = replay_counter.Value(), ok_before = ok_counter.Value();
  Results results;
  constexpr int kN = 150;
  for (int i = 0; i < kN; ++i) pool->Submit(Post(absl::StrCat("g", i)), results.Callback(i));
  ASSERT_TRUE(results.WaitFor(kN, absl::Seconds(30)));
  for (int i = 0; i < kN; ++i) {
    Result r = results.Get(i);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    EXPECT_EQ(r->body, absl::StrCat("{\"id\":\"g", i, "\"}"));
  }
  std::map<std::string, int> seen;
  for (const ReceivedRequest& r : server->requests()) ++seen[r.Header("x-id")];
  EXPECT_EQ(seen.size(), static_cast<size_t>(kN));
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << id << " processed twice";
  uint64_t replays = pool->GetStats().goaway_replays;
  EXPECT_GT(replays, 0u);
  EXPECT_EQ(replay_counter.Value() - replays_before, replays);
  EXPECT_EQ(ok_counter.Value() - ok_before, static_cast<uint64_t>(kN));
  EXPECT_GE(server->connections_accepted(), kN / 7);
}

// A graceful GOAWAY (last-stream-id 2^31-1): in-flight streams finish there, nothing is
// replayed, new streams go to a new connection.
TEST_F(PoolTest, GracefulGoawayMovesNewStreamsToAnotherConnection) {
  TestServerOptions so;
  so.max_concurrent_streams = 4;
  so.response_delay = absl::Milliseconds(20);
  so.goaway_after_requests = 4;
  so.goaway_last_stream_id = INT32_MAX;
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.max_connections = 1;
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  constexpr int kN = 20;
  for (int i = 0; i < kN; ++i) pool->Submit(Post(absl::StrCat("s", i)), results.Callback(i));
  ASSERT_TRUE(results.WaitFor(kN));
  std::map<std::string, std::set<int>> conns_per_id;
  for (const ReceivedRequest& r : server->requests()) {
    conns_per_id[r.Header("x-id")].insert(r.connection);
  }
  EXPECT_EQ(conns_per_id.size(), static_cast<size_t>(kN));
  std::map<int, int> per_connection;
  for (int i = 0; i < kN; ++i) {
    Result r = results.Get(i);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    ++per_connection[std::stoi(r->Header("x-connection"))];
  }
  EXPECT_EQ(pool->GetStats().goaway_replays, 0u);
  EXPECT_GE(server->connections_accepted(), kN / 4);
  for (const auto& [conn, count] : per_connection) {
    EXPECT_LE(count, 4) << "connection " << conn << " kept receiving streams after GOAWAY";
  }
}

// Connections dropped without GOAWAY: what the server may have processed is never resent.
TEST_F(PoolTest, DroppedConnectionNeverResendsPossiblyProcessedRequests) {
  TestServerOptions so;
  so.max_concurrent_streams = 5;
  so.response_delay = absl::Milliseconds(30);
  so.close_after_requests = 4;
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.max_connections = 1;
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  constexpr int kN = 40;
  for (int i = 0; i < kN; ++i) pool->Submit(Post(absl::StrCat("d", i)), results.Callback(i));
  ASSERT_TRUE(results.WaitFor(kN, absl::Seconds(30)));
  std::map<std::string, int> seen;
  for (const ReceivedRequest& r : server->requests()) ++seen[r.Header("x-id")];
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << id << " processed twice";
  int unavailable = 0;
  for (int i = 0; i < kN; ++i) {
    Result r = results.Get(i);
    std::string id = absl::StrCat("d", i);
    if (r.ok()) {
      ADD_FAILURE() << id << " answered although the server never responds before dropping";
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("may have been delivered"));
      EXPECT_EQ(r.reason(), FailureReason::kConnectionLost);
      ++unavailable;
    }
  }
  EXPECT_EQ(unavailable, kN);
  EXPECT_GE(server->connections_accepted(), 2) << "the pool did not reconnect after the drop";
}

TEST_F(PoolTest, StreamResetAfterProcessingIsNeverSentAgain) {
  auto server = StartServer({});
  auto pool = MakePool(Options(*server));
  ASSERT_NE(pool, nullptr);
  Results results;
  Request r = Post("reset");
  r.headers.emplace_back("x-reset", "2");  // INTERNAL_ERROR
  pool->Submit(r, results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1));
  Result result = results.Get(0);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("INTERNAL_ERROR"));
  EXPECT_EQ(result.reason(), FailureReason::kStreamReset);
  EXPECT_EQ(server->requests().size(), 1u);
  EXPECT_EQ(pool->GetStats().goaway_replays, 0u);
}

TEST_F(PoolTest, ResponseBodyOverTheLimitFails) {
  auto server = StartServer({});
  auto pool = MakePool(Options(*server));
  ASSERT_NE(pool, nullptr);
  Results results;
  Request r = Post("big");
  r.body = std::string((4 << 20) + 1, 'x');  // echoed back: one byte over the 4 MiB limit
  pool->Submit(r, results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1));
  Result result = results.Get(0);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("larger than 4194304 bytes"));
  EXPECT_EQ(result.reason(), FailureReason::kResponseTooLarge);
  // The connection stays usable.
  pool->Submit(Post("after"), results.Callback(1));
  ASSERT_TRUE(results.WaitFor(2));
  EXPECT_TRUE(results.Get(1).ok()) << results.Get(1).status();
  EXPECT_EQ(server->connections_accepted(), 1);
}

TEST_F(PoolTest, ReconnectsWhenTheServerComesBack) {
  auto server = StartServer({});
  int port = server->port();
  auto pool = MakePool(Options(*server));
  ASSERT_NE(pool, nullptr);
  Results results;
  pool->Submit(Post("before"), results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1));
  ASSERT_TRUE(results.Get(0).ok());

  server.reset();  // down: the connection closes, reconnection attempts are refused
  ASSERT_TRUE(Eventually([&] { return pool->GetStats().connections == 0; }, absl::Seconds(5),
                         "the pool noticing the closed connection"));
  pool->Submit(Post("while-down", absl::Seconds(20)), results.Callback(1));
  EXPECT_FALSE(results.WaitFor(2, absl::Milliseconds(500)))
      << "a request waiting for reconnection must stay queued";
  EXPECT_EQ(pool->GetStats().queued, 1u);

  TestServerOptions so;
  so.port = port;
  server = StartServer(so);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(results.WaitFor(2, absl::Seconds(10)));
  Result r = results.Get(1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(server->requests().size(), 1u);
  EXPECT_EQ(server->requests()[0].Header("x-id"), "while-down");
}

// min_connections: open before any request, and reopened when lost with nothing to send, so a
// push never waits for TCP and TLS.
TEST_F(PoolTest, MinConnectionsOpenAtStartAndReopenWhenLost) {
  auto server = StartServer({});
  int port = server->port();
  PoolOptions po = Options(*server);
  po.min_connections = 1;
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  ASSERT_TRUE(server->WaitForConnections(1, absl::Seconds(5))) << "the connection opened at start";
  EXPECT_EQ(server->connections_accepted(), 1);
  ASSERT_TRUE(Eventually([&] { return pool->GetStats().connections == 1; }, absl::Seconds(5),
                         "the pool counting it"));

  server.reset();
  ASSERT_TRUE(Eventually([&] { return pool->GetStats().connections == 0; }, absl::Seconds(5),
                         "the pool noticing the closed connection"));
  TestServerOptions so;
  so.port = port;
  server = StartServer(so);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->WaitForConnections(1, absl::Seconds(5)))
      << "the connection reopened without a request";
  EXPECT_EQ(server->connections_accepted(), 1);
  ASSERT_TRUE(Eventually([&] { return pool->GetStats().connections == 1; }, absl::Seconds(5),
                         "the pool counting it"));

  Results results;
  pool->Submit(Post("a"), results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1));
  ASSERT_TRUE(results.Get(0).ok()) << results.Get(0).status();
  EXPECT_EQ(results.Get(0)->Header("x-connection"), "1");  // the one already open
  EXPECT_EQ(server->connections_accepted(), 1);
}

// Nameservers are asked in resolv.conf's order, as the C library asks them: podman lists its
// network's DNS (which knows the other containers) before the host's resolver (NXDOMAIN for
// them), and spreading queries over both failed about half the lookups. After a failed lookup
// the next one asks the next nameserver.
TEST_F(PoolTest, AsksNameserversInOrderAndTheNextAfterAFailedLookup) {
  const std::string name = "h2.pushgate.test";
  auto server = StartServer({});
  auto knows = FakeDns::Start(name, /*nxdomain_for_all=*/false);
  auto does_not_know = FakeDns::Start(name, /*nxdomain_for_all=*/true);
  ASSERT_TRUE(knows.ok() && does_not_know.ok());
  auto pool_for = [&](const std::vector<const FakeDns*>& order, const std::string& file) {
    std::ofstream out(dir_ + "/" + file);
    for (const FakeDns* dns : order) out << "nameserver 127.0.0.1:" << dns->port() << "\n";
    out.close();
    PoolOptions po = Options(*server);
    po.base_url = absl::StrCat("https://", name, ":", server->port());
    po.tls.server_name_override = "localhost";  // the test certificate's name
    po.resolv_conf = dir_ + "/" + file;
    return MakePool(po);
  };

  {  // The one that knows the name first: every query goes to it (A and AAAA alike).
    auto pool = pool_for({knows->get(), does_not_know->get()}, "resolv-ordered.conf");
    ASSERT_NE(pool, nullptr);
    Results results;
    pool->Submit(Post("a"), results.Callback(0));
    ASSERT_TRUE(results.WaitFor(1));
    ASSERT_TRUE(results.Get(0).ok()) << results.Get(0).status();
    EXPECT_GE((*knows)->queries(), 1);
    EXPECT_EQ((*does_not_know)->queries(), 0);
  }
  {  // The one that does not know it first: the first attempt fails, the next asks the other.
    const int before = (*knows)->queries();
    auto pool = pool_for({does_not_know->get(), knows->get()}, "resolv-reversed.conf");
    ASSERT_NE(pool, nullptr);
    Results results;
    pool->Submit(Post("b"), results.Callback(0));
    ASSERT_TRUE(results.WaitFor(1, absl::Seconds(10)));
    ASSERT_TRUE(results.Get(0).ok()) << results.Get(0).status();
    EXPECT_GE((*does_not_know)->queries(), 1);
    EXPECT_GT((*knows)->queries(), before);
  }
}

// A peer that accepts TCP but never speaks TLS: the connect timeout fires, the request stays
// queued for the next attempts and finally fails with its deadline, naming the last error.
TEST_F(PoolTest, ConnectTimeoutKeepsRequestsQueuedUntilTheirDeadline) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  ASSERT_EQ(listen(fd, 16), 0);  // never accepted: the kernel completes TCP, nobody answers
  socklen_t len = sizeof(sin);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  PoolOptions po;
  po.base_url = absl::StrCat("https://127.0.0.1:", ntohs(sin.sin_port));
  po.tls.ca_file = server_cert_.cert_file;
  po.connect_timeout = absl::Milliseconds(150);
  po.reconnect_backoff_initial = absl::Milliseconds(20);
  po.reconnect_backoff_max = absl::Milliseconds(50);
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  pool->Submit(Post("a", absl::Milliseconds(700)), results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1, absl::Seconds(5)));
  Result r = results.Get(0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("timed out after 150ms"));
  EXPECT_EQ(r.reason(), FailureReason::kDeadlineBeforeSent);
  pool.reset();
  close(fd);
}

TEST_F(PoolTest, WrongCaFailsWithVerificationError) {
  auto server = StartServer({});
  PoolOptions po = Options(*server);
  po.tls.ca_file = other_cert_.cert_file;
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  pool->Submit(Post("a"), results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1, absl::Seconds(5)));
  Result r = results.Get(0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("certificate verification failed"));
  EXPECT_EQ(r.reason(), FailureReason::kTlsFailure);
  // Until a later attempt succeeds, new requests fail fast with the same cause.
  absl::Time start = absl::Now();
  pool->Submit(Post("b"), results.Callback(1));
  ASSERT_TRUE(results.WaitFor(2, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_THAT(std::string(results.Get(1).status().message()),
              HasSubstr("certificate verification failed"));
  EXPECT_TRUE(server->requests().empty());
}

TEST_F(PoolTest, HostnameMismatchFailsVerification) {
  auto server = StartServer({});
  PoolOptions po = Options(*server);
  po.tls.server_name_override = "api.push.apple.com";
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  pool->Submit(Post("a"), results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1, absl::Seconds(5)));
  Result r = results.Get(0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("certificate verification failed"));
  EXPECT_EQ(r.reason(), FailureReason::kTlsFailure);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("hostname mismatch"));
}

TEST_F(PoolTest, PeerWithoutH2IsRejected) {
  TestServerOptions so;
  so.negotiate_h2 = false;
  auto server = StartServer(so);
  auto pool = MakePool(Options(*server));
  ASSERT_NE(pool, nullptr);
  Results results;
  pool->Submit(Post("a"), results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1, absl::Seconds(5)));
  Result r = results.Get(0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("peer did not negotiate h2"));
  EXPECT_EQ(r.reason(), FailureReason::kTlsFailure);
}

TEST_F(PoolTest, ClientCertificateIsPresented) {
  TestServerOptions so;
  so.client_ca_file = client_cert_.cert_file;
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.tls.client_cert_file = client_cert_.cert_file;
  po.tls.client_key_file = client_cert_.key_file;
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  pool->Submit(Post("a"), results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1));
  ASSERT_TRUE(results.Get(0).ok()) << results.Get(0).status();
  ASSERT_EQ(server->requests().size(), 1u);
  EXPECT_THAT(server->requests()[0].client_subject, HasSubstr("CN=client"));

  // Without the certificate the server refuses the handshake.
  auto bare = MakePool(Options(*server));
  bare->Submit(Post("b"), results.Callback(1));
  ASSERT_TRUE(results.WaitFor(2, absl::Seconds(5)));
  EXPECT_EQ(results.Get(1).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server->requests().size(), 1u);
}

TEST_F(PoolTest, DrainWaitsForQueuedAndInFlightRequests) {
  TestServerOptions so;
  so.max_concurrent_streams = 2;
  so.response_delay = absl::Milliseconds(50);
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.max_connections = 1;
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  for (int i = 0; i < 10; ++i) pool->Submit(Post(absl::StrCat("r", i)), results.Callback(i));
  absl::Time start = absl::Now();
  pool->Drain(absl::Seconds(10));
  EXPECT_EQ(results.calls(), 10u) << "Drain returned before every request finished";
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));  // 5 rounds of 50 ms
  // A timeout bounds it.
  TestServerOptions slow;
  slow.response_delay = absl::Seconds(5);
  auto slow_server = StartServer(slow);
  auto slow_pool = MakePool(Options(*slow_server));
  slow_pool->Submit(Post("slow"), results.Callback(100));
  start = absl::Now();
  slow_pool->Drain(absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(results.calls(), 10u);
  slow_pool.reset();  // pending request fails at shutdown
  ASSERT_TRUE(results.WaitFor(11, absl::Seconds(1)));
  Result r = results.Get(100);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("pool shut down"));
  EXPECT_EQ(r.reason(), FailureReason::kConnectionLost) << "it was sent";
}

TEST_F(PoolTest, IdleConnectionIsPingedAndKept) {
  auto server = StartServer({});
  PoolOptions po = Options(*server);
  po.ping_interval = absl::Milliseconds(100);
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  pool->Submit(Post("a"), results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1));
  ASSERT_TRUE(server->WaitForPings(2, absl::Seconds(3))) << "on the idle connection";
  pool->Submit(Post("b"), results.Callback(1));
  ASSERT_TRUE(results.WaitFor(2));
  ASSERT_TRUE(results.Get(1).ok());
  EXPECT_EQ(results.Get(1)->Header("x-connection"), "1");
  EXPECT_EQ(server->connections_accepted(), 1);
}

TEST_F(PoolTest, MissingPingAckDropsTheConnection) {
  TestServerOptions so;
  so.ack_pings = false;
  auto server = StartServer(so);
  PoolOptions po = Options(*server);
  po.ping_interval = absl::Milliseconds(100);
  auto pool = MakePool(po);
  ASSERT_NE(pool, nullptr);
  Results results;
  pool->Submit(Post("a"), results.Callback(0));
  ASSERT_TRUE(results.WaitFor(1));
  ASSERT_TRUE(Eventually([&] { return pool->GetStats().connections == 0; }, absl::Seconds(3),
                         "the pool dropping the connection whose PING was not acknowledged"));
  pool->Submit(Post("b"), results.Callback(1));
  ASSERT_TRUE(results.WaitFor(2));
  ASSERT_TRUE(results.Get(1).ok()) << results.Get(1).status();
  EXPECT_EQ(results.Get(1)->Header("x-connection"), "2");
}

TEST_F(PoolTest, CreateRejectsBadOptionsClearly) {
  PoolOptions o;
  o.base_url = "http://127.0.0.1:1";
  EXPECT_THAT(std::string(Pool::Create(o).status().message()), HasSubstr("https://"));
  o.base_url = "https://127.0.0.1:1";
  o.tls.ca_file = "/nonexistent/ca.pem";
  absl::Status s = Pool::Create(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("/nonexistent/ca.pem"));
  o.tls.ca_file = "";
  o.tls.client_cert_file = client_cert_.cert_file;
  EXPECT_THAT(std::string(Pool::Create(o).status().message()), HasSubstr("together"));
  o.tls.client_key_file = other_cert_.key_file;
  EXPECT_THAT(std::string(Pool::Create(o).status().message()), HasSubstr("mismatch"));
  o.tls = TlsOptions();
  o.max_connections = 2;
  o.min_connections = 3;
  s = Pool::Create(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("min_connections must be 0..max_connections (2)"));
}

}  // namespace
}  // namespace pushgate::http2
