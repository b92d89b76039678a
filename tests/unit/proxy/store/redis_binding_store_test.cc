// RedisBindingStore against a real redis-server (unix socket in a temp dir, started and killed
// by the test): the shared BindingStore suite, replicas, restarts, outages and timeouts.
#include "proxy/store/redis_binding_store.h"

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/core/registrar.h"
#include "proxy/store/poll_event_loop.h"
#include "tests/unit/proxy/store/binding_store_suite.h"
#include "tests/unit/proxy/store/redis_test_server.h"

namespace pushgate::proxy {
namespace {

using ::pushgate::proxy::testing::RedisTestServer;
using ::testing::HasSubstr;

// Runs `loop` until `done()` holds; the failure says what never happened.
::testing::AssertionResult RunUntil(PollEventLoop& loop, const std::function<bool()>& done,
                                    absl::string_view what,
                                    absl::Duration timeout = absl::Seconds(5)) {
  if (loop.RunUntil(done, timeout)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "never happened within " << absl::FormatDuration(timeout) << ": " << what;
}

// One server and one loop for the shared suite (each test process starts its own server).
RedisTestServer& SharedServer() {
  static RedisTestServer* server = [] {
    auto* s = new RedisTestServer();
    absl::Status started = s->Start();
    if (!started.ok()) ADD_FAILURE() << "redis-server: " << started;
    return s;
  }();
  return *server;
}

PollEventLoop& SharedLoop() {
  static PollEventLoop* loop = new PollEventLoop();
  return *loop;
}

class StopSharedServer : public ::testing::Environment {
 public:
  void TearDown() override { SharedServer().Stop(); }
};
const auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new StopSharedServer());  // gtest owns it

std::unique_ptr<BindingStore> MakeSharedStore() {
  RedisTestServer& server = SharedServer();
  auto flushed = server.Command({"FLUSHALL"});
  EXPECT_TRUE(flushed.ok()) << flushed.status();
  RedisStoreConfig config;
  config.address = server.address();
  auto store = RedisBindingStore::Create(SharedLoop(), config);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return nullptr;
  RedisBindingStore* raw = store->get();
  EXPECT_TRUE(RunUntil(
      SharedLoop(), [&] { return raw->connected() && raw->listening(); },
      "the store connecting and subscribing"))
      << raw->last_error();
  return *std::move(store);
}

INSTANTIATE_TEST_SUITE_P(Redis, BindingStoreSuite,
                         ::testing::Values(BindingStoreSuiteParam{
                             .name = "redis",
                             .make = &MakeSharedStore,
                             .run_until =
                                 [](const std::function<bool()>& done, absl::Duration timeout) {
                                   return SharedLoop().RunUntil(done, timeout);
                                 },
                             .base_time = absl::Now()}),
                         BindingStoreSuiteParamName);

constexpr const char* kApns =
    "<sip:alice@192.0.2.1:5060;transport=tcp;pn-provider=apns;pn-prid="
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef;"
    "pn-param=ABCD123456.org.example.phone.voip>;+sip.instance=\"<urn:uuid:1>\"";
constexpr const char* kFcm =
    "<sip:alice@198.51.100.2:5070;pn-provider=fcm;pn-param=proj;pn-prid=fcm:tok-1>;q=0.5";
constexpr const char* kAor = "sip:alice@example.org";

Binding Make(const std::string& contact, absl::Duration expires, absl::Time now) {
  RegisterRequest r;
  r.aor = kAor;
  auto list = ParseContacts(contact);
  EXPECT_TRUE(list.ok()) << list.status();
  r.call_id = "call-1";
  r.cseq = 3;
  r.source = {Transport::kTcp, "192.0.2.50", 41000};
  return MakeBinding(r, list->contacts.at(0), expires, now);
}

// Each test: its own redis-server (so it may kill it), a poll loop, helpers that wait with a
// timeout and say what never arrived.
class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = server_.Start();
    ASSERT_TRUE(started.ok()) << started;
    now_ = absl::Now();
  }

  RedisStoreConfig Config() {
    RedisStoreConfig config;
    config.address = server_.address();
    config.op_timeout = absl::Seconds(5);  // outage tests must not pass through the timeout
    config.reconnect_min_backoff = absl::Milliseconds(20);
    config.reconnect_max_backoff = absl::Milliseconds(200);
    return config;
  }

  ::testing::AssertionResult Until(const std::function<bool()>& done, absl::string_view what,
                                   absl::Duration timeout = absl::Seconds(5)) {
    return RunUntil(loop_, done, what, timeout);
  }

  // Until every command issued so far has been written to its socket (no connection has unsent
  // output): how a test knows its commands are in a paused Redis's input.
  ::testing::AssertionResult UntilWritten() {
    return Until([&] { return loop_.write_watch_count() == 0; },
                 "the commands being written to the Redis sockets");
  }

  std::unique_ptr<RedisBindingStore> NewStore(RedisStoreConfig config, bool wait = true) {
    auto store = RedisBindingStore::Create(loop_, std::move(config));
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return nullptr;
    RedisBindingStore* raw = store->get();
    if (wait) {
      EXPECT_TRUE(Until([&] { return raw->connected() && raw->listening(); },
                        "the store connecting and subscribing"))
          << raw->last_error();
    }
    return *std::move(store);
  }
  std::unique_ptr<RedisBindingStore> NewStore() { return NewStore(Config()); }

  absl::StatusOr<std::vector<Binding>> Fetch(BindingStore& store, const std::string& aor,
                                             absl::Duration timeout = absl::Seconds(5)) {
    bool called = false;
    absl::StatusOr<std::vector<Binding>> result = absl::UnknownError("Fetch never answered");
    store.Fetch(aor, now_, [&](absl::StatusOr<std::vector<Binding>> r) {
      EXPECT_FALSE(called) << "Fetch answered twice";
      called = true;
      result = std::move(r);
    });
    EXPECT_TRUE(Until([&] { return called; }, "the answer to Fetch", timeout));
    return result;
  }

  absl::Status Replace(BindingStore& store, const std::string& aor, std::vector<Binding> b,
                       absl::Duration timeout = absl::Seconds(5)) {
    bool called = false;
    absl::Status result = absl::UnknownError("Replace never answered");
    store.Replace(aor, std::move(b), now_, [&](absl::Status s) {
      EXPECT_FALSE(called) << "Replace answered twice";
      called = true;
      result = std::move(s);
    });
    EXPECT_TRUE(Until([&] { return called; }, "the answer to Replace", timeout));
    return result;
  }

  absl::StatusOr<size_t> Remove(BindingStore& store, const std::string& aor,
                                const std::string& key) {
    bool called = false;
    absl::StatusOr<size_t> result = absl::UnknownError("RemoveByPushKey never answered");
    store.RemoveByPushKey(aor, key, now_, [&](absl::StatusOr<size_t> r) {
      called = true;
      result = std::move(r);
    });
    EXPECT_TRUE(Until([&] { return called; }, "the answer to RemoveByPushKey"));
    return result;
  }

  RedisTestServer server_;
  PollEventLoop loop_;
  absl::Time now_;
};

TEST_F(RedisStoreTest, OneKeyPerAorWithTtlAtTheLatestExpiry) {
  auto store = NewStore();
  ASSERT_TRUE(Replace(*store, kAor,
                      {Make(kApns, absl::Seconds(600), now_), Make(kFcm, absl::Seconds(60), now_)})
                  .ok());
  auto keys = server_.Command({"KEYS", "*"});
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(*keys, "pushgate:aor:sip:alice@example.org");
  auto ttl = server_.Command({"PTTL", "pushgate:aor:sip:alice@example.org"});
  ASSERT_TRUE(ttl.ok());
  int64_t ms = std::stoll(*ttl);
  EXPECT_GT(ms, 590'000);
  EXPECT_LE(ms, 600'000);
  ASSERT_TRUE(Replace(*store, kAor, {}).ok());
  keys = server_.Command({"KEYS", "*"});
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, "");
}

TEST_F(RedisStoreTest, KeyPrefixAndDatabaseAreConfigurable) {
  RedisStoreConfig config = Config();
  config.key_prefix = "tenant7:";
  config.db = 3;
  auto store = NewStore(config);
  ASSERT_TRUE(Replace(*store, kAor, {Make(kFcm, absl::Seconds(60), now_)}).ok());
  auto in_db0 = server_.Command({"EXISTS", "tenant7:aor:sip:alice@example.org"});
  ASSERT_TRUE(in_db0.ok());
  EXPECT_EQ(*in_db0, "0");
  auto size = server_.Command({"EVAL", "redis.call('SELECT', 3) return redis.call('DBSIZE')", "0"});
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, "1");
  auto got = Fetch(*store, kAor);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), 1u);
}

TEST_F(RedisStoreTest, TwoReplicasShareBindingsAndHearEachOthersRegistrations) {
  auto a = NewStore();
  auto b = NewStore();
  std::vector<std::string> heard_by_a;
  std::vector<std::string> heard_by_b;
  a->Subscribe([&](const std::string& aor, const Binding& binding) {
    heard_by_a.push_back(aor + " " + binding.contact.host);
  });
  b->Subscribe([&](const std::string& aor, const Binding& binding) {
    heard_by_b.push_back(aor + " " + binding.contact.host + " " + binding.push_key());
  });
  Binding apns = Make(kApns, absl::Hours(1), now_);
  ASSERT_TRUE(Replace(*a, kAor, {apns}).ok());
  // A's listener ran for its own Replace (once: its own published message is skipped).
  EXPECT_THAT(heard_by_a, ::testing::ElementsAre("sip:alice@example.org 192.0.2.1"));
  auto seen_by_b = Fetch(*b, kAor);
  ASSERT_TRUE(seen_by_b.ok()) << seen_by_b.status();
  ASSERT_EQ(seen_by_b->size(), 1u);
  EXPECT_EQ(seen_by_b->at(0), apns);
  ASSERT_TRUE(
      Until([&] { return !heard_by_b.empty(); }, "replica B hearing A's registration via pub/sub"));
  EXPECT_THAT(heard_by_b,
              ::testing::ElementsAre("sip:alice@example.org 192.0.2.1 " + apns.push_key()));
  // A's own message was published before B's next one, and Redis delivers a channel's messages
  // in order: once A hears B's, it has had its own (and skipped it).
  ASSERT_TRUE(Replace(*b, "sip:bob@example.org", {Make(kFcm, absl::Hours(1), now_)}).ok());
  ASSERT_TRUE(Until([&] { return heard_by_a.size() >= 2; },
                    "replica A hearing B's registration via pub/sub"));
  EXPECT_THAT(heard_by_a, ::testing::ElementsAre("sip:alice@example.org 192.0.2.1",
                                                 "sip:bob@example.org 198.51.100.2"))
      << "A heard its own registration twice";

  // B removes the device (dead token); A sees it gone.
  auto removed = Remove(*b, kAor, apns.push_key());
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 1u);
  auto seen_by_a = Fetch(*a, kAor);
  ASSERT_TRUE(seen_by_a.ok());
  EXPECT_TRUE(seen_by_a->empty());
}

TEST_F(RedisStoreTest, RemoveByPushKeyNeverLosesAConcurrentRegistration) {
  // Replica B registers a new device while replica A removes a dead token of the same AOR, in
  // the same loop turn: whatever order Redis sees them in, B's binding must survive (A writes
  // with compare-and-set and retries on a conflict) and the dead device must be gone.
  auto a = NewStore();
  auto b = NewStore();
  Binding apns = Make(kApns, absl::Hours(1), now_);
  Binding fcm = Make(kFcm, absl::Hours(1), now_);
  Binding third = Make("<sip:alice@203.0.113.7;pn-provider=fcm;pn-param=proj;pn-prid=tok-3>",
                       absl::Hours(1), now_);
  metrics::Counter& conflicts = metrics::Registry::Default().GetCounter(
      "pushgate_redis_cas_conflicts_total",
      "Read-modify-write updates (registrations, dead-token removals) retried because another "
      "writer changed the AOR meanwhile");
  const uint64_t conflicts_before = conflicts.Value();
  for (int round = 0; round < 20; ++round) {
    ASSERT_TRUE(Replace(*a, kAor, {apns, fcm}).ok());
    // Even rounds: Redis is paused while both commands are sent, so it reads them in one batch
    // and A's GET often precedes B's SET (then A's compare-and-set must fail and retry).
    if (round % 2 == 0) server_.Pause();
    bool removed_done = false;
    bool replaced_done = false;
    absl::StatusOr<size_t> removed = absl::UnknownError("never answered");
    a->RemoveByPushKey(kAor, apns.push_key(), now_, [&](const absl::StatusOr<size_t>& r) {
      removed = r;
      removed_done = true;
    });
    b->Replace(kAor, {apns, fcm, third}, now_, [&](const absl::Status& s) {
      EXPECT_TRUE(s.ok()) << s;
      replaced_done = true;
    });
    if (round % 2 == 0) {
      ASSERT_TRUE(UntilWritten());  // both commands wait in Redis's input
      server_.Resume();
    }
    ASSERT_TRUE(Until([&] { return removed_done && replaced_done; },
                      "the answers to RemoveByPushKey and Replace"));
    ASSERT_TRUE(removed.ok()) << removed.status();
    EXPECT_EQ(*removed, 1u);
    auto got = Fetch(*a, kAor);
    ASSERT_TRUE(got.ok());
    std::vector<std::string> hosts;
    for (const Binding& binding : *got) hosts.push_back(binding.contact.host);
    // Either B wrote first (A then removed apns from B's list) or A removed first and B's
    // Replace re-added apns: B's new binding is there in both cases.
    EXPECT_THAT(hosts, ::testing::Contains("203.0.113.7")) << "round " << round;
    EXPECT_THAT(hosts, ::testing::Contains("198.51.100.2")) << "round " << round;
  }
  // The race was really run (not only the easy order); the outcome above held through it.
  EXPECT_GT(conflicts.Value(), conflicts_before) << "no compare-and-set conflict in 10 rounds";
}

TEST_F(RedisStoreTest, ConcurrentUpdatesFromTwoReplicasKeepEveryDevice) {
  // Two replicas each register another device of one AOR at the same instant (Redis paused while
  // both read): compare-and-set makes the loser read again, so both devices stay bound.
  auto a = NewStore();
  auto b = NewStore();
  Binding apns = Make(kApns, absl::Hours(1), now_);
  Binding fcm = Make(kFcm, absl::Hours(1), now_);
  auto add = [](const Binding& binding) {
    return [binding](std::vector<Binding> live) {
      live.push_back(binding);
      return live;
    };
  };
  int mutations = 0;
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(Replace(*a, kAor, {}).ok());
    server_.Pause();
    absl::Status sa = absl::UnknownError("never answered");
    absl::Status sb = absl::UnknownError("never answered");
    bool da = false;
    bool db = false;
    a->Update(
        kAor, now_,
        [&, f = add(apns)](std::vector<Binding> live) {
          ++mutations;
          return f(std::move(live));
        },
        [&](const absl::Status& s) {
          sa = s;
          da = true;
        });
    b->Update(
        kAor, now_,
        [&, f = add(fcm)](std::vector<Binding> live) {
          ++mutations;
          return f(std::move(live));
        },
        [&](const absl::Status& s) {
          sb = s;
          db = true;
        });
    ASSERT_TRUE(UntilWritten());  // both GETs wait in Redis's input
    server_.Resume();
    ASSERT_TRUE(Until([&] { return da && db; }, "the answers to both Updates"));
    ASSERT_TRUE(sa.ok()) << sa;
    ASSERT_TRUE(sb.ok()) << sb;
    auto got = Fetch(*a, kAor);
    ASSERT_TRUE(got.ok()) << got.status();
    std::vector<std::string> hosts;
    for (const Binding& binding : *got) hosts.push_back(binding.contact.host);
    EXPECT_THAT(hosts, ::testing::UnorderedElementsAre("192.0.2.1", "198.51.100.2"))
        << "round " << round;
  }
  // Both GETs were answered before either write, so one of each round had to mutate again.
  EXPECT_GT(mutations, 10) << "no Update ever retried: the race was not run";
}

TEST_F(RedisStoreTest, ProxyRestartKeepsBindings) {
  std::vector<Binding> bindings = {Make(kApns, absl::Hours(1), now_),
                                   Make(kFcm, absl::Minutes(5), now_)};
  {
    auto before = NewStore();
    ASSERT_TRUE(Replace(*before, kAor, bindings).ok());
  }  // the proxy goes away
  auto after = NewStore();
  auto got = Fetch(*after, kAor);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bindings);
}

TEST_F(RedisStoreTest, RedisKilledAnswersUnavailableAtOnce) {
  auto store = NewStore();
  ASSERT_TRUE(Replace(*store, kAor, {Make(kFcm, absl::Hours(1), now_)}).ok());
  server_.Stop();
  absl::Time start = absl::Now();
  auto fetched = Fetch(*store, kAor);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable) << fetched.status();
  EXPECT_THAT(std::string(fetched.status().message()), HasSubstr("redis unavailable: "));
  absl::Status replaced = Replace(*store, kAor, {Make(kApns, absl::Hours(1), now_)});
  EXPECT_EQ(replaced.code(), absl::StatusCode::kUnavailable) << replaced;
  auto removed = Remove(*store, kAor, "fcm|proj|fcm:tok-1");
  EXPECT_EQ(removed.status().code(), absl::StatusCode::kUnavailable) << removed.status();
  // Far below op_timeout (5 s): the failure is seen, not waited out.
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_FALSE(store->connected());
  EXPECT_GE(store->RetryAfterHint(), absl::Seconds(1));
}

TEST_F(RedisStoreTest, PendingOperationsFailWhenTheConnectionBreaks) {
  auto store = NewStore();
  server_.Pause();
  int answered = 0;
  std::vector<absl::Status> statuses;
  for (int i = 0; i < 3; ++i) {
    store->Fetch(kAor, now_, [&](const absl::StatusOr<std::vector<Binding>>& r) {
      ++answered;
      statuses.push_back(r.status());
    });
  }
  store->Replace(kAor, {Make(kFcm, absl::Hours(1), now_)}, now_, [&](const absl::Status& s) {
    ++answered;
    statuses.push_back(s);
  });
  ASSERT_TRUE(UntilWritten());
  EXPECT_EQ(answered, 0) << "answered while Redis was paused and before the timeout";
  absl::Time start = absl::Now();
  server_.Stop();  // SIGKILL while stopped: the socket closes
  ASSERT_TRUE(Until([&] { return answered == 4; },
                    "the answers to 4 pending operations after the connection broke",
                    absl::Seconds(3)))
      << answered << "/4 answered";
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  for (const absl::Status& s : statuses) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  }
}

TEST_F(RedisStoreTest, RecoversWhenRedisComesBack) {
  auto store = NewStore();
  Binding fcm = Make(kFcm, absl::Hours(1), now_);
  metrics::Counter& failures = metrics::Registry::Default().GetCounter(
      "pushgate_redis_connection_failures_total", "Redis connections lost or failed to establish",
      {{"connection", "commands"}});
  server_.Stop();
  EXPECT_EQ(Fetch(*store, kAor).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(Until([&] { return !store->connected(); }, "the store noticing Redis died",
                    absl::Seconds(2)));
  const uint64_t failures_when_down = failures.Value();
  ASSERT_TRUE(Until([&] { return failures.Value() >= failures_when_down + 3; },
                    "3 failed reconnection attempts"));
  ASSERT_TRUE(server_.Start().ok());
  ASSERT_TRUE(Until([&] { return store->connected() && store->listening(); },
                    "the store reconnecting and subscribing again"))
      << store->last_error();
  EXPECT_TRUE(Replace(*store, kAor, {fcm}).ok());
  auto got = Fetch(*store, kAor);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::vector<Binding>{fcm});
}

TEST_F(RedisStoreTest, ReplicaListenerWorksAgainAfterReconnection) {
  auto a = NewStore();
  auto b = NewStore();
  int heard = 0;
  b->Subscribe([&](const std::string&, const Binding&) { ++heard; });
  server_.Stop();
  ASSERT_TRUE(Until([&] { return !a->connected() && !b->listening(); },
                    "the replicas noticing that Redis died", absl::Seconds(3)));
  ASSERT_TRUE(server_.Start().ok());
  ASSERT_TRUE(Until([&] { return a->connected() && b->connected() && b->listening(); },
                    "the replicas reconnecting and B subscribing again"));
  ASSERT_TRUE(Replace(*a, kAor, {Make(kFcm, absl::Hours(1), now_)}).ok());
  EXPECT_TRUE(Until([&] { return heard == 1; }, "B hearing A's registration after reconnecting"));
}

TEST_F(RedisStoreTest, OperationTimesOutWhenRedisHangs) {
  RedisStoreConfig config = Config();
  config.op_timeout = absl::Milliseconds(300);
  auto store = NewStore(config);
  server_.Pause();
  absl::Time start = absl::Now();
  auto fetched = Fetch(*store, kAor, absl::Seconds(3));
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable) << fetched.status();
  EXPECT_THAT(std::string(fetched.status().message()), HasSubstr("no reply within 300ms"));
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Milliseconds(1000));
  server_.Resume();
  ASSERT_TRUE(Until([&] { return store->connected(); }, "the store reconnecting after the pause"))
      << store->last_error();
  EXPECT_TRUE(Fetch(*store, kAor).ok());
}

TEST_F(RedisStoreTest, DebugSleepFromAnotherClientTimesOut) {
  RedisTestServer debuggable({"--enable-debug-command", "yes"});
  ASSERT_TRUE(debuggable.Start().ok());
  RedisStoreConfig config = Config();
  config.address = debuggable.address();
  config.op_timeout = absl::Milliseconds(200);
  auto store = NewStore(config);
  // DEBUG SLEEP blocks the server for 1 s; run it from a thread (synchronous client).
  absl::StatusOr<std::string> slept = absl::UnknownError("not run");
  std::thread sleeper([&] { slept = debuggable.Command({"DEBUG", "SLEEP", "1"}); });
  absl::Status blocked = debuggable.UntilBlocked(absl::Seconds(2));
  if (!blocked.ok()) {
    sleeper.join();
    FAIL() << "DEBUG SLEEP never blocked the server: " << blocked;
  }
  absl::Time start = absl::Now();
  absl::Status s = Replace(*store, kAor, {Make(kFcm, absl::Hours(1), now_)}, absl::Seconds(3));
  absl::Duration took = absl::Now() - start;
  sleeper.join();
  ASSERT_TRUE(slept.ok()) << "DEBUG SLEEP: " << slept.status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("no reply within 200ms"));
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Milliseconds(700));
  // Once the server wakes up, the store reconnects by itself.
  ASSERT_TRUE(Until([&] { return store->connected(); }, "the store reconnecting after the sleep"))
      << store->last_error();
  EXPECT_TRUE(Replace(*store, kAor, {Make(kFcm, absl::Hours(1), now_)}).ok());
}

TEST_F(RedisStoreTest, NoServerMeansUnavailableNotAHang) {
  RedisStoreConfig config = Config();
  config.address = "unix:/nonexistent/pushgate-redis.sock";
  auto store = NewStore(config, /*wait=*/false);
  absl::Time start = absl::Now();
  auto fetched = Fetch(*store, kAor);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(fetched.status().message()), HasSubstr("redis unavailable: "));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
}

TEST_F(RedisStoreTest, UnreachableTcpAddressTimesOutConnecting) {
  RedisStoreConfig config = Config();
  config.address = "tcp://192.0.2.1:6379";  // TEST-NET-1: never answers
  config.connect_timeout = absl::Milliseconds(300);
  auto store = NewStore(config, /*wait=*/false);
  absl::Time start = absl::Now();
  auto fetched = Fetch(*store, kAor, absl::Seconds(8));
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable) << fetched.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(6));
}

TEST_F(RedisStoreTest, CorruptRecordIsDataLoss) {
  auto store = NewStore();
  ASSERT_TRUE(server_.Command({"SET", "pushgate:aor:sip:alice@example.org", "garbage"}).ok());
  auto fetched = Fetch(*store, kAor);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kDataLoss) << fetched.status();
  // Replace overwrites it.
  EXPECT_TRUE(Replace(*store, kAor, {Make(kFcm, absl::Hours(1), now_)}).ok());
  EXPECT_TRUE(Fetch(*store, kAor).ok());
}

TEST(RedisAddressTest, Parses) {
  auto unix_socket = ParseRedisAddress("unix:/run/redis/redis.sock");
  ASSERT_TRUE(unix_socket.ok());
  EXPECT_TRUE(unix_socket->unix_socket);
  EXPECT_EQ(unix_socket->host, "/run/redis/redis.sock");
  auto tcp = ParseRedisAddress("tcp://10.0.0.5:6380");
  ASSERT_TRUE(tcp.ok());
  EXPECT_EQ(tcp->host, "10.0.0.5");
  EXPECT_EQ(tcp->port, 6380);
  auto v6 = ParseRedisAddress("tcp://[::1]:6379");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  for (const char* bad : {"localhost:6379", "tcp://host", "tcp://:1", "tcp://h:0", "tcp://h:99999",
                          "unix:relative", "tcp://[::1:6379"}) {
    EXPECT_EQ(ParseRedisAddress(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  PollEventLoop loop;
  RedisStoreConfig config;
  config.address = "redis://x";
  EXPECT_EQ(RedisBindingStore::Create(loop, config).status().code(),
            absl::StatusCode::kInvalidArgument);
}

class RedisAuthTest : public ::testing::Test {
 protected:
  RedisTestServer server_{{"--requirepass", "s3cret"}};
  PollEventLoop loop_;
};

TEST_F(RedisAuthTest, PasswordIsSentAndAWrongOneIsUnavailable) {
  ASSERT_TRUE(server_.Start().ok());
  RedisStoreConfig config;
  config.address = server_.address();
  config.password = "s3cret";
  auto good = RedisBindingStore::Create(loop_, config);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(RunUntil(
      loop_, [&] { return (*good)->connected(); }, "the store with the right password connecting"))
      << (*good)->last_error();

  config.password = "wrong";
  auto bad = RedisBindingStore::Create(loop_, config);
  ASSERT_TRUE(bad.ok());
  bool called = false;
  absl::Status status;
  (*bad)->Fetch(kAor, absl::Now(), [&](const absl::StatusOr<std::vector<Binding>>& r) {
    called = true;
    status = r.status();
  });
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return called; }, "the answer to Fetch (wrong password)"));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_FALSE((*bad)->connected());
  EXPECT_THAT(std::string((*bad)->last_error().message()), HasSubstr("AUTH failed"));
}

}  // namespace
}  // namespace pushgate::proxy
