#include "proxy/core/call_target.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace pushgate::proxy {
namespace {

constexpr char kAor[] = "sip:alice@example.org";
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

// A binding of alice at `host`:`port`, named by `instance` or by its push token `prid`.
Binding Phone(const std::string& host, uint16_t port, const std::string& instance,
              const std::string& prid = "", int updated_s = 0) {
  Binding b;
  b.aor = kAor;
  std::string uri = absl::StrCat("sip:alice@", host, ":", port);
  if (!prid.empty()) {
    // An APNs token is 64 hex digits: `prid` names it.
    const std::string token = prid + std::string(64 - prid.size(), '0');
    absl::StrAppend(&uri, ";pn-provider=apns;pn-prid=", token, ";pn-param=ABCD123456.org.x.voip");
  }
  b.contact = *ParseUri(uri);
  if (auto push = ParsePushParams(b.contact); push.ok() && push->has_value()) b.push = **push;
  EXPECT_EQ(prid.empty(), !b.push.has_value()) << uri;
  b.instance_id = instance;
  b.updated_at = kT0 + absl::Seconds(updated_s);
  b.expires_at = kT0 + absl::Hours(1);
  return b;
}

MasqueradeTarget Restored(const Binding& b, bool insert_domain = false) {
  MasqueradeTarget t;
  t.insert_domain = insert_domain;
  t.aor = kAor;
  t.user = b.contact.user;
  if (insert_domain) {
    t.aor_domain = "example.org";
  } else {
    t.original = TransportInfo{Transport::kUdp, b.contact.host, *b.contact.port};
    t.device_tag = DeviceTag(DeviceKey(b));
  }
  return t;
}

std::vector<std::string> Hosts(const std::vector<Binding>& bindings) {
  std::vector<std::string> out;
  out.reserve(bindings.size());
  for (const Binding& b : bindings)
    out.push_back(absl::StrCat(b.contact.host, ":", *b.contact.port));
  return out;
}

TEST(DeviceKeyTest, InstanceElsePushKeyElseNothing) {
  EXPECT_EQ(DeviceKey(Phone("10.0.0.1", 5060, "<urn:uuid:1>", "ab")), "instance:<urn:uuid:1>");
  EXPECT_THAT(DeviceKey(Phone("10.0.0.1", 5060, "", "ab")), ::testing::StartsWith("push:"));
  EXPECT_THAT(DeviceKey(Phone("10.0.0.1", 5060, "", "ab")), ::testing::HasSubstr("ab"));
  EXPECT_EQ(DeviceKey(Phone("10.0.0.1", 5060, "")), "");
}

TEST(CallTargetTest, InsertDomainValueNamesTheWholeAor) {
  CallTarget t = CallTargetOf(Restored(Phone("10.0.0.1", 5060, "<urn:uuid:1>"), true));
  EXPECT_TRUE(t.whole_aor);
  EXPECT_EQ(t.aor, kAor);
  EXPECT_EQ(ScopeOf(t), ForkScope::kAor);
  EXPECT_EQ(t, CallTarget::Aor(kAor));
}

TEST(CallTargetTest, ContactValueNamesOnePhone) {
  CallTarget t = CallTargetOf(Restored(Phone("10.0.0.1", 5060, "<urn:uuid:1>")));
  EXPECT_FALSE(t.whole_aor);
  EXPECT_EQ(t.aor, kAor);
  EXPECT_EQ(t.device_tag, DeviceTag("instance:<urn:uuid:1>"));
  EXPECT_EQ(ScopeOf(t), ForkScope::kDevice);
  EXPECT_THAT(DebugString(t), ::testing::HasSubstr("device "));
}

TEST(CallTargetTest, AorFromTheRestoredUriWhenTheValueCarriesNone) {
  MasqueradeTarget m = Restored(Phone("10.0.0.1", 5060, "<urn:uuid:1>"));
  m.aor.clear();
  m.restored = *ParseUri("sip:bob@10.0.0.1:5060");
  EXPECT_EQ(CallTargetOf(m).aor, "sip:bob@10.0.0.1");
}

// Which bindings a call goes to, for the AOR's bindings:
//   one  iPhone, instance 1, at 10.0.0.1:5060
//   two  Android without instance (push key), at 10.0.0.2:5060
//   plain phone without instance nor push, at 10.0.0.3:5060
TEST(SelectBindingsTest, Table) {
  const Binding one = Phone("10.0.0.1", 5060, "<urn:uuid:1>", "a1", 1);
  const Binding two = Phone("10.0.0.2", 5060, "", "a2", 2);
  const Binding plain = Phone("10.0.0.3", 5060, "", "", 3);
  const std::vector<Binding> all = {one, two, plain};
  // `one` registered again from elsewhere (woken): same instance, new contact and token.
  const Binding one_moved = Phone("10.0.9.9", 40000, "<urn:uuid:1>", "a1b", 9);
  // `one`'s older binding still in the list (another reg-id): the newer one wins.
  Binding one_older = Phone("10.0.0.8", 5060, "<urn:uuid:1>", "a1", 0);
  one_older.reg_id = 2;

  CallTarget untagged = CallTargetOf(Restored(plain));
  untagged.device_tag.clear();  // a value made before device tags
  CallTarget untagged_one = CallTargetOf(Restored(one));
  untagged_one.device_tag.clear();
  CallTarget gone = CallTargetOf(Restored(Phone("10.0.0.4", 5060, "<urn:uuid:4>")));

  struct Case {
    const char* name;
    CallTarget target;
    std::vector<Binding> bindings;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"the AOR: every binding",
       CallTarget::Aor(kAor),
       all,
       {"10.0.0.1:5060", "10.0.0.2:5060", "10.0.0.3:5060"}},
      {"by instance", CallTargetOf(Restored(one)), all, {"10.0.0.1:5060"}},
      {"by push key", CallTargetOf(Restored(two)), all, {"10.0.0.2:5060"}},
      {"no device key: by contact address", CallTargetOf(Restored(plain)), all, {"10.0.0.3:5060"}},
      {"untagged value: by contact address", untagged, all, {"10.0.0.3:5060"}},
      {"after a re-REGISTER from elsewhere: the current contact",
       CallTargetOf(Restored(one)),
       {one_moved, two, plain},
       {"10.0.9.9:40000"}},
      {"untagged value of a phone that moved: gone", untagged_one, {one_moved, two, plain}, {}},
      {"two bindings of the device: the newest only",
       CallTargetOf(Restored(one)),
       {one_older, one, two},
       {"10.0.0.1:5060"}},
      {"phone no longer registered: none", gone, all, {}},
      {"no bindings", CallTargetOf(Restored(one)), {}, {}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Hosts(SelectBindings(c.target, c.bindings)), c.expected) << c.name;
  }
}

TEST(MergeKeyTest, SameCallToTheSameDeviceOnlyForOnePhone) {
  const Binding one = Phone("10.0.0.1", 5060, "<urn:uuid:1>", "a1");
  const Binding one_moved = Phone("10.0.9.9", 40000, "<urn:uuid:1>", "a1");
  const Binding two = Phone("10.0.0.2", 5060, "", "a2");
  const Binding plain = Phone("10.0.0.3", 5060, "");
  const CallTarget t = CallTargetOf(Restored(one));
  const std::string key = MergeKey(t, {one}, "c1", "ft", 1);
  EXPECT_FALSE(key.empty());
  EXPECT_EQ(key, MergeKey(t, {one_moved}, "c1", "ft", 1)) << "the phone, at either contact";
  EXPECT_NE(key, MergeKey(t, {two}, "c1", "ft", 1)) << "another phone";
  EXPECT_NE(key, MergeKey(t, {one}, "c2", "ft", 1)) << "another call";
  EXPECT_NE(key, MergeKey(t, {one}, "c1", "ft2", 1)) << "another caller";
  EXPECT_NE(key, MergeKey(t, {one}, "c1", "ft", 2)) << "a new request";
  EXPECT_NE(MergeKey(t, {plain}, "c1", "ft", 1), "") << "named by its contact";
  EXPECT_EQ(MergeKey(CallTarget::Aor(kAor), {one}, "c1", "ft", 1), "") << "the whole AOR";
  EXPECT_EQ(MergeKey(t, {}, "c1", "ft", 1), "");
}

}  // namespace
}  // namespace pushgate::proxy
