#include "proxy/store/memory_binding_store.h"

#include "tests/unit/proxy/store/binding_store_suite.h"

namespace pushgate::proxy {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, BindingStoreSuite,
                         ::testing::Values(BindingStoreSuiteParam{
                             .name = "memory",
                             .make = [] { return std::make_unique<MemoryBindingStore>(); },
                         }),
                         BindingStoreSuiteParamName);

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

Binding Simple(const std::string& aor, const std::string& host, absl::Time expires_at) {
  Binding b;
  b.aor = aor;
  b.contact = *ParseUri("sip:u@" + host);
  b.expires_at = expires_at;
  b.updated_at = kT0;
  return b;
}

TEST(MemoryBindingStoreTest, CallsDoneSynchronously) {
  MemoryBindingStore store;
  bool called = false;
  store.Replace("sip:a@b", {Simple("sip:a@b", "h", kT0 + absl::Hours(1))}, kT0,
                [&](const absl::Status& s) {
                  EXPECT_TRUE(s.ok());
                  called = true;
                });
  EXPECT_TRUE(called);
  called = false;
  store.Fetch("sip:a@b", kT0, [&](absl::StatusOr<std::vector<Binding>> r) {
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), 1u);
    called = true;
  });
  EXPECT_TRUE(called);
}

TEST(MemoryBindingStoreTest, SweepDropsExpiredBindingsAndEmptyAors) {
  MemoryBindingStore store;
  auto ok = [](const absl::Status& s) { EXPECT_TRUE(s.ok()) << s; };
  store.Replace("sip:a@x",
                {Simple("sip:a@x", "h1", kT0 + absl::Seconds(10)),
                 Simple("sip:a@x", "h2", kT0 + absl::Seconds(100))},
                kT0, ok);
  store.Replace("sip:b@x", {Simple("sip:b@x", "h3", kT0 + absl::Seconds(10))}, kT0, ok);
  store.Replace("sip:c@x", {Simple("sip:c@x", "h4", kT0 + absl::Seconds(1000))}, kT0, ok);
  EXPECT_EQ(store.ApproximateSize(), 4u);
  EXPECT_EQ(store.aor_count(), 3u);

  EXPECT_EQ(store.Sweep(kT0 + absl::Seconds(9)), 0u);
  EXPECT_EQ(store.Sweep(kT0 + absl::Seconds(10)), 2u);
  EXPECT_EQ(store.ApproximateSize(), 2u);
  EXPECT_EQ(store.aor_count(), 2u);
  store.Fetch("sip:a@x", kT0 + absl::Seconds(10), [](absl::StatusOr<std::vector<Binding>> r) {
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ(r->at(0).contact.host, "h2");
  });
  EXPECT_EQ(store.Sweep(kT0 + absl::Seconds(5000)), 2u);
  EXPECT_EQ(store.ApproximateSize(), 0u);
  EXPECT_EQ(store.aor_count(), 0u);
}

TEST(MemoryBindingStoreTest, SweepSomeCoversEveryShardInTurn) {
  MemoryBindingStore store;
  for (int i = 0; i < 1000; ++i) {
    const std::string aor = "sip:u" + std::to_string(i) + "@x";
    store.Replace(aor,
                  {Simple(aor, "short", kT0 + absl::Seconds(10)),
                   Simple(aor, "long", kT0 + absl::Seconds(i % 2 == 0 ? 5 : 1000))},
                  kT0, [](const absl::Status& s) { EXPECT_TRUE(s.ok()); });
  }
  ASSERT_EQ(store.ApproximateSize(), 2000u);
  const absl::Time later = kT0 + absl::Seconds(20);
  const size_t first = store.SweepSome(later);
  EXPECT_GT(first, 0u);
  EXPECT_LT(first, 1500u);  // one shard of 64, not everything
  size_t total = first;
  for (size_t i = 1; i < MemoryBindingStore::kShards; ++i) total += store.SweepSome(later);
  // Even AORs lost both bindings (dropped whole), odd ones kept "long".
  EXPECT_EQ(total, 1500u);
  EXPECT_EQ(store.ApproximateSize(), 500u);
  EXPECT_EQ(store.aor_count(), 500u);
  EXPECT_EQ(store.SweepSome(later, MemoryBindingStore::kShards), 0u);
  store.Fetch("sip:u1@x", later, [](absl::StatusOr<std::vector<Binding>> r) {
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ(r->at(0).contact.host, "long");
  });
}

TEST(MemoryBindingStoreTest, ListenerMayUnsubscribeItself) {
  MemoryBindingStore store;
  int calls = 0;
  BindingStore::SubscriptionId id = 0;
  id = store.Subscribe([&](const std::string&, const Binding&) {
    ++calls;
    store.Unsubscribe(id);
  });
  store.Replace("sip:a@x",
                {Simple("sip:a@x", "h1", kT0 + absl::Hours(1)),
                 Simple("sip:a@x", "h2", kT0 + absl::Hours(1))},
                kT0, [](const absl::Status&) {});
  // Both bindings of this Replace were announced; later Replaces are not.
  EXPECT_EQ(calls, 2);
  store.Replace("sip:a@x", {Simple("sip:a@x", "h3", kT0 + absl::Hours(1))}, kT0,
                [](const absl::Status&) {});
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace pushgate::proxy
