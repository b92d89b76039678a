#include "proxy/core/pending_registers.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST(ExpiringLruCacheTest, InsertFindTake) {
  ExpiringLruCache<int> cache(4);
  EXPECT_TRUE(cache.Insert("a", 1, kT0 + absl::Seconds(32)).empty());
  ASSERT_NE(cache.Find("a", kT0), nullptr);
  EXPECT_EQ(*cache.Find("a", kT0), 1);
  EXPECT_EQ(cache.Find("b", kT0), nullptr);
  EXPECT_EQ(cache.Take("a", kT0), 1);
  EXPECT_EQ(cache.Take("a", kT0), std::nullopt);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ExpiringLruCacheTest, ExpiredEntriesAreInvisibleAndSwept) {
  ExpiringLruCache<std::string> cache(10);
  cache.Insert("short", "s", kT0 + absl::Seconds(1));
  cache.Insert("long", "l", kT0 + absl::Seconds(60));
  EXPECT_EQ(cache.Find("short", kT0 + absl::Seconds(1)), nullptr);
  EXPECT_THAT(cache.Sweep(kT0 + absl::Seconds(1)), ElementsAre(Pair("short", "s")));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Take("long", kT0 + absl::Seconds(60)), std::nullopt);  // expired: removed
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ExpiringLruCacheTest, EvictsLeastRecentlyUsedWhenFull) {
  ExpiringLruCache<int> cache(2);
  cache.Insert("a", 1, kT0 + absl::Hours(1));
  cache.Insert("b", 2, kT0 + absl::Hours(1));
  ASSERT_NE(cache.Find("a", kT0), nullptr);  // a is now most recently used
  EXPECT_THAT(cache.Insert("c", 3, kT0 + absl::Hours(1)), ElementsAre(Pair("b", 2)));
  EXPECT_NE(cache.Find("a", kT0), nullptr);
  EXPECT_EQ(cache.Find("b", kT0), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(ExpiringLruCacheTest, ReinsertReplacesWithoutEvicting) {
  ExpiringLruCache<int> cache(2);
  cache.Insert("a", 1, kT0 + absl::Hours(1));
  cache.Insert("b", 2, kT0 + absl::Hours(1));
  EXPECT_TRUE(cache.Insert("a", 10, kT0 + absl::Hours(1)).empty());
  EXPECT_EQ(*cache.Find("a", kT0), 10);
  EXPECT_TRUE(cache.Erase("a"));
  EXPECT_FALSE(cache.Erase("a"));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(PendingRegistersTest, KeepsTheOriginalRequest) {
  PendingRegisters pending(100);
  RegisterRequest r;
  r.aor = "sip:alice@example.org";
  r.contacts = *ParseContacts("<sip:alice@192.0.2.1;pn-provider=fcm;pn-prid=tok>");
  pending.Insert("z9hG4bK-1", r, kT0 + absl::Seconds(32));
  auto back = pending.Take("z9hG4bK-1", kT0 + absl::Seconds(5));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->aor, "sip:alice@example.org");
  EXPECT_EQ(Param(back->contacts.contacts[0].uri, "pn-prid"), "tok");
}

}  // namespace
}  // namespace pushgate::proxy
