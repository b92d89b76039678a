// Conformance suite every BindingStore implementation must pass.
//
// Include this header in EXACTLY ONE test .cc per store and instantiate it:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, BindingStoreSuite,
//       ::testing::Values(BindingStoreSuiteParam{
//           .name = "memory",
//           .make = [] { return std::make_unique<MemoryBindingStore>(); }}),
//       BindingStoreSuiteParamName);
//
// Asynchronous stores (Redis) set `run_until`: it must run their event loop until the predicate
// holds or the timeout passes (returning false then). `base_time` is the first "now" the suite
// uses; it only moves forward from there (Redis TTLs may use it, so a Redis instantiation can
// pass absl::Now()). `make` may reset shared state (e.g. FLUSHDB) so each test starts empty.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/core/registrar.h"
#include "proxy/store/binding_store.h"

namespace pushgate::proxy {

struct BindingStoreSuiteParam {
  std::string name;
  std::function<std::unique_ptr<BindingStore>()> make;
  // Runs the store's loop until `done()` or `timeout`; nullptr: `done` is set synchronously.
  std::function<bool(const std::function<bool()>& done, absl::Duration timeout)> run_until;
  absl::Time base_time = absl::FromUnixSeconds(1'800'000'000);
};

inline std::string BindingStoreSuiteParamName(
    const ::testing::TestParamInfo<BindingStoreSuiteParam>& info) {
  return info.param.name;
}

class BindingStoreSuite : public ::testing::TestWithParam<BindingStoreSuiteParam> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
    now_ = GetParam().base_time;
  }

  ::testing::AssertionResult Wait(const std::function<bool()>& done, const char* what) {
    const auto& run = GetParam().run_until;
    if (run ? run(done, absl::Seconds(5)) : done()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << ": callback never called";
  }

  absl::StatusOr<std::vector<Binding>> Fetch(const std::string& aor) {
    bool called = false;
    absl::StatusOr<std::vector<Binding>> result = absl::UnknownError("not called");
    store_->Fetch(aor, now_, [&](absl::StatusOr<std::vector<Binding>> r) {
      EXPECT_FALSE(called) << "Fetch done called twice";
      called = true;
      result = std::move(r);
    });
    EXPECT_TRUE(Wait([&] { return called; }, "Fetch"));
    return result;
  }

  absl::Status Replace(const std::string& aor, std::vector<Binding> bindings) {
    bool called = false;
    absl::Status result = absl::UnknownError("not called");
    store_->Replace(aor, std::move(bindings), now_, [&](absl::Status s) {
      EXPECT_FALSE(called) << "Replace done called twice";
      called = true;
      result = std::move(s);
    });
    EXPECT_TRUE(Wait([&] { return called; }, "Replace"));
    return result;
  }

  absl::StatusOr<size_t> RemoveByPushKey(const std::string& aor, const std::string& key) {
    bool called = false;
    absl::StatusOr<size_t> result = absl::UnknownError("not called");
    store_->RemoveByPushKey(aor, key, now_, [&](absl::StatusOr<size_t> r) {
      called = true;
      result = std::move(r);
    });
    EXPECT_TRUE(Wait([&] { return called; }, "RemoveByPushKey"));
    return result;
  }

  absl::Status Update(const std::string& aor, BindingStore::Mutation mutate) {
    bool called = false;
    absl::Status result = absl::UnknownError("not called");
    store_->Update(aor, now_, std::move(mutate), [&](absl::Status s) {
      EXPECT_FALSE(called) << "Update done called twice";
      called = true;
      result = std::move(s);
    });
    EXPECT_TRUE(Wait([&] { return called; }, "Update"));
    return result;
  }

  // A binding as the registrar would make it from a REGISTER.
  Binding Make(const std::string& aor, const std::string& contact, absl::Duration expires) {
    RegisterRequest r;
    r.aor = aor;
    auto list = ParseContacts(contact);
    EXPECT_TRUE(list.ok()) << contact << ": " << list.status();
    r.call_id = "call-" + contact.substr(0, 12);
    r.cseq = 7;
    r.source = {Transport::kTcp, "2001:db8::99", 41000};
    r.flow_token = "flow-7";
    return MakeBinding(r, list->contacts.at(0), expires, now_);
  }

  static constexpr const char* kApns =
      "<sip:alice@192.0.2.1:5060;transport=tcp;pn-provider=apns;pn-prid="
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef;"
      "pn-param=ABCD123456.org.example.phone.voip>;+sip.instance=\"<urn:uuid:1>\"";
  static constexpr const char* kFcm =
      "<sip:alice@198.51.100.2:5070;pn-provider=fcm;pn-param=proj;pn-prid=fcm:tok-1>;q=0.5";

  std::unique_ptr<BindingStore> store_;
  absl::Time now_;
};

TEST_P(BindingStoreSuite, UnknownAorIsEmpty) {
  auto got = Fetch("sip:nobody@example.org");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
  EXPECT_EQ(store_->ApproximateSize(), 0u);
}

TEST_P(BindingStoreSuite, ReplaceThenFetchReturnsTheSameBindings) {
  const std::string aor = "sip:alice@example.org";
  std::vector<Binding> bindings = {Make(aor, kApns, absl::Hours(1)),
                                   Make(aor, kFcm, absl::Minutes(10))};
  ASSERT_TRUE(Replace(aor, bindings).ok());
  auto got = Fetch(aor);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bindings);  // every field, order kept, push parameters included
  EXPECT_EQ(store_->ApproximateSize(), 2u);
  auto other = Fetch("sip:bob@example.org");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
}

TEST_P(BindingStoreSuite, ReplaceOverwritesAndEmptyDeletes) {
  const std::string aor = "sip:alice@example.org";
  ASSERT_TRUE(
      Replace(aor, {Make(aor, kApns, absl::Hours(1)), Make(aor, kFcm, absl::Hours(1))}).ok());
  ASSERT_TRUE(Replace(aor, {Make(aor, kFcm, absl::Hours(2))}).ok());
  auto got = Fetch(aor);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->at(0).contact.host, "198.51.100.2");
  EXPECT_EQ(store_->ApproximateSize(), 1u);
  ASSERT_TRUE(Replace(aor, {}).ok());
  got = Fetch(aor);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
  EXPECT_EQ(store_->ApproximateSize(), 0u);
}

TEST_P(BindingStoreSuite, ExpiredBindingsAreNeitherStoredNorReturned) {
  const std::string aor = "sip:alice@example.org";
  Binding short_lived = Make(aor, kFcm, absl::Seconds(60));
  Binding long_lived = Make(aor, kApns, absl::Seconds(3600));
  Binding already_expired = Make(aor, "<sip:alice@gone.example>", absl::ZeroDuration());
  ASSERT_TRUE(Replace(aor, {short_lived, long_lived, already_expired}).ok());
  auto got = Fetch(aor);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), 2u);
  now_ += absl::Seconds(60);
  got = Fetch(aor);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->at(0).contact.host, "192.0.2.1");
  now_ += absl::Seconds(3600);
  got = Fetch(aor);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

TEST_P(BindingStoreSuite, RemoveByPushKeyRemovesOnlyThatDevice) {
  const std::string aor = "sip:alice@example.org";
  Binding apns = Make(aor, kApns, absl::Hours(1));
  Binding fcm = Make(aor, kFcm, absl::Hours(1));
  ASSERT_TRUE(Replace(aor, {apns, fcm}).ok());
  auto removed = RemoveByPushKey(aor, apns.push_key());
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 1u);
  auto got = Fetch(aor);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->at(0).push_key(), fcm.push_key());
  removed = RemoveByPushKey(aor, "apns|nope|nope");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0u);
  removed = RemoveByPushKey("sip:nobody@example.org", fcm.push_key());
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0u);
}

TEST_P(BindingStoreSuite, UpdateMutatesTheLiveBindings) {
  const std::string aor = "sip:alice@example.org";
  Binding apns = Make(aor, kApns, absl::Hours(1));
  Binding fcm = Make(aor, kFcm, absl::Hours(1));
  Binding old = Make(aor, "<sip:alice@old.example>", absl::Seconds(5));
  std::vector<std::string> seen;
  const auto id = store_->Subscribe(
      [&](const std::string&, const Binding& b) { seen.push_back(b.contact.host); });
  // Unknown AOR: the mutation starts from nothing.
  std::vector<std::string> given;
  ASSERT_TRUE(Update(aor, [&](const std::vector<Binding>& live) {
                for (const Binding& b : live) given.push_back(b.contact.host);
                return std::vector<Binding>{apns, old};
              }).ok());
  EXPECT_TRUE(given.empty());
  EXPECT_THAT(seen, ::testing::UnorderedElementsAre("192.0.2.1", "old.example"));
  seen.clear();
  // Later: the expired binding is not given to the mutation; what it returns is stored.
  now_ += absl::Seconds(10);
  ASSERT_TRUE(Update(aor, [&](std::vector<Binding> live) {
                for (const Binding& b : live) given.push_back(b.contact.host);
                live.push_back(fcm);
                return live;
              }).ok());
  EXPECT_THAT(given, ::testing::ElementsAre("192.0.2.1"));
  EXPECT_THAT(seen, ::testing::ElementsAre("198.51.100.2")) << "only the new binding announced";
  auto got = Fetch(aor);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ(got->at(0).contact.host, "192.0.2.1");
  EXPECT_EQ(got->at(1).contact.host, "198.51.100.2");
  EXPECT_EQ(got->at(1).aor, aor);
  // Returning nothing deletes the AOR.
  ASSERT_TRUE(Update(aor, [](const std::vector<Binding>&) { return std::vector<Binding>(); }).ok());
  got = Fetch(aor);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
  store_->Unsubscribe(id);
}

TEST_P(BindingStoreSuite, ListenerSeesNewAndChangedBindingsOnly) {
  const std::string aor = "sip:alice@example.org";
  std::vector<std::string> seen;
  const auto id = store_->Subscribe(
      [&](const std::string& a, const Binding& b) { seen.push_back(a + " " + b.contact.host); });
  Binding apns = Make(aor, kApns, absl::Hours(1));
  Binding fcm = Make(aor, kFcm, absl::Hours(1));
  ASSERT_TRUE(Replace(aor, {apns}).ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("sip:alice@example.org 192.0.2.1"));
  seen.clear();
  // Unchanged apns binding, new fcm binding: only fcm is announced.
  ASSERT_TRUE(Replace(aor, {apns, fcm}).ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("sip:alice@example.org 198.51.100.2"));
  seen.clear();
  // A refresh (new expiry) is a change.
  now_ += absl::Seconds(10);
  ASSERT_TRUE(Replace(aor, {Make(aor, kApns, absl::Hours(1)), fcm}).ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("sip:alice@example.org 192.0.2.1"));
  seen.clear();
  store_->Unsubscribe(id);
  ASSERT_TRUE(Replace(aor, {Make(aor, "<sip:alice@third.example>", absl::Hours(1))}).ok());
  EXPECT_TRUE(seen.empty());
}

TEST_P(BindingStoreSuite, AorsAreIndependent) {
  std::vector<std::string> aors;
  aors.reserve(50);
  for (int i = 0; i < 50; ++i) aors.push_back("sip:user" + std::to_string(i) + "@example.org");
  for (const std::string& aor : aors) {
    ASSERT_TRUE(Replace(aor, {Make(aor, kFcm, absl::Hours(1))}).ok());
  }
  EXPECT_EQ(store_->ApproximateSize(), 50u);
  ASSERT_TRUE(Replace(aors[7], {}).ok());
  for (size_t i = 0; i < aors.size(); ++i) {
    auto got = Fetch(aors[i]);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->size(), i == 7 ? 0u : 1u) << aors[i];
    if (!got->empty()) {
      EXPECT_EQ(got->at(0).aor, aors[i]);
    }
  }
}

}  // namespace pushgate::proxy
