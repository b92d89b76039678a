#include "proxy/core/registrar.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"

namespace pushgate::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kTokA[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kTokB[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

RegisterRequest Request(const std::string& contacts, std::optional<uint32_t> expires = {},
                        uint32_t cseq = 1) {
  RegisterRequest r;
  r.aor = "sip:alice@example.org";
  if (!contacts.empty()) {
    auto list = ParseContacts(contacts);
    EXPECT_TRUE(list.ok()) << contacts << ": " << list.status();
    if (list.ok()) r.contacts = *list;
  }
  r.expires_header = expires;
  r.call_id = "call-1";
  r.cseq = cseq;
  r.source = {Transport::kTcp, "198.51.100.7", 40000};
  r.flow_token = "flow-1";
  return r;
}

std::string ApnsContact(const std::string& host, const char* token,
                        const std::string& header_params = "") {
  return "<sip:alice@" + host + ";transport=tcp;pn-provider=apns;pn-prid=" + token +
         ";pn-param=ABCD123456.org.example.phone.voip>" + header_params;
}

std::vector<std::string> Hosts(const std::vector<Binding>& bindings) {
  std::vector<std::string> out;
  out.reserve(bindings.size());
  for (const Binding& b : bindings) out.push_back(b.contact.host);
  return out;
}

class RegistrarTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  RegistrarPolicy policy_;

  // The full register-on-response step: check, "backend grants what was asked", apply.
  std::vector<Binding> Register(std::vector<Binding> existing, const RegisterRequest& request) {
    RegisterCheck check = CheckRegister(request, policy_);
    EXPECT_TRUE(check.ok()) << check.error->reason;
    return ApplyRegistration(std::move(existing), request, check.expiries, clock_.Now(), policy_);
  }
};

TEST_F(RegistrarTest, ExpiryFromParamHeaderOrDefaultClampedToMax) {
  policy_.max_expires = absl::Seconds(7200);
  auto check = CheckRegister(
      Request("<sip:a@h1>;expires=120, <sip:a@h2>, <sip:a@h3>;expires=999999", 300), policy_);
  ASSERT_TRUE(check.ok());
  EXPECT_THAT(check.expiries,
              ElementsAre(absl::Seconds(120), absl::Seconds(300), absl::Seconds(7200)));
  auto defaults = CheckRegister(Request("<sip:a@h1>"), policy_);
  EXPECT_THAT(defaults.expiries, ElementsAre(policy_.default_expires));
}

TEST_F(RegistrarTest, IntervalTooBriefGives423WithMinExpires) {
  auto check = CheckRegister(Request("<sip:a@h1>;expires=30"), policy_);
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error->status, 423);
  EXPECT_EQ(check.error->reason, "Interval Too Brief");
  EXPECT_THAT(check.error->headers, ElementsAre(Pair("Min-Expires", "60")));
  EXPECT_FALSE(CheckRegister(Request("<sip:a@h1>", 59), policy_).ok());
  // Zero is a removal, never too brief.
  auto removal = CheckRegister(Request("<sip:a@h1>;expires=0"), policy_);
  ASSERT_TRUE(removal.ok());
  EXPECT_THAT(removal.expiries, ElementsAre(absl::ZeroDuration()));
}

TEST_F(RegistrarTest, WildcardRules) {
  auto ok = CheckRegister(Request("*", 0), policy_);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok.wildcard);
  auto no_expires = CheckRegister(Request("*"), policy_);
  ASSERT_FALSE(no_expires.ok());
  EXPECT_EQ(no_expires.error->status, 400);
  EXPECT_EQ(no_expires.error->reason, "Contact: * requires Expires: 0");
  EXPECT_EQ(CheckRegister(Request("*", 3600), policy_).error->status, 400);
  auto mixed = CheckRegister(Request("*, <sip:a@b>", 0), policy_);
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.error->reason, "Contact: * must be the only contact");
}

TEST_F(RegistrarTest, TooManyContactsInOneRegisterIs403) {
  policy_.max_contacts_per_register = 2;
  auto check = CheckRegister(Request("<sip:a@h1>, <sip:a@h2>, <sip:a@h3>"), policy_);
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error->status, 403);
  EXPECT_THAT(check.error->reason, HasSubstr("max 2"));
  EXPECT_TRUE(CheckRegister(Request("<sip:a@h1>, <sip:a@h2>"), policy_).ok());
}

TEST_F(RegistrarTest, MalformedPushParamsGive400WithReason) {
  auto check = CheckRegister(Request("<sip:a@h1;pn-prid=abc>"), policy_);
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error->status, 400);
  EXPECT_EQ(check.error->reason, "pn-prid without pn-provider");
}

TEST_F(RegistrarTest, NoContactIsAFetch) {
  auto check = CheckRegister(Request(""), policy_);
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check.fetch);
}

TEST_F(RegistrarTest, MakeBindingTakesEverythingFromContactAndRequest) {
  RegisterRequest r = Request(
      ApnsContact("192.0.2.1:5060", kTokA, ";q=0.5;+sip.instance=\"<urn:uuid:1>\";reg-id=3"));
  Binding b = MakeBinding(r, r.contacts.contacts[0], absl::Seconds(600), clock_.Now());
  EXPECT_EQ(b.aor, "sip:alice@example.org");
  EXPECT_EQ(b.contact.host, "192.0.2.1");
  EXPECT_TRUE(HasParam(b.contact, "pn-prid"));  // the original contact, push params included
  EXPECT_EQ(b.instance_id, "<urn:uuid:1>");
  EXPECT_EQ(b.reg_id, 3u);
  EXPECT_FLOAT_EQ(b.q, 0.5f);
  ASSERT_TRUE(b.push.has_value());
  EXPECT_EQ(b.push->prid, kTokA);
  EXPECT_EQ(b.received, r.source);
  EXPECT_EQ(b.flow_token, "flow-1");
  EXPECT_EQ(b.expires_at, clock_.Now() + absl::Seconds(600));
  EXPECT_EQ(b.call_id, "call-1");
  EXPECT_EQ(b.updated_at, clock_.Now());
}

TEST_F(RegistrarTest, RefreshFromSameContactReplaces) {
  auto bindings = Register({}, Request("<sip:alice@192.0.2.1:5060>", 600));
  ASSERT_EQ(bindings.size(), 1u);
  clock_.Advance(absl::Seconds(300));
  bindings = Register(bindings, Request("<sip:alice@192.0.2.1:5060>", 600, 2));
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].expires_at, clock_.Now() + absl::Seconds(600));
  EXPECT_EQ(bindings[0].cseq, 2u);
}

TEST_F(RegistrarTest, OlderCSeqOfSameCallIdDoesNotUndoNewerRegistration) {
  auto bindings = Register({}, Request("<sip:alice@192.0.2.1:5060>", 600, 5));
  // The answer to CSeq 4 (a de-registration) arrives after CSeq 5's: ignored.
  bindings = Register(bindings, Request("<sip:alice@192.0.2.1:5060>", 0, 4));
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].cseq, 5u);
  // Another Call-ID (e.g. after a phone restart) is not ordered against it.
  RegisterRequest other = Request("<sip:alice@192.0.2.1:5060>", 0, 1);
  other.call_id = "call-2";
  EXPECT_TRUE(Register(bindings, other).empty());
}

TEST_F(RegistrarTest, SameInstanceReplacesEvenWithNewAddressAndToken) {
  auto bindings = Register(
      {}, Request(ApnsContact("192.0.2.1:5060", kTokA, ";+sip.instance=\"<urn:uuid:1>\"")));
  clock_.Advance(absl::Seconds(10));
  bindings = Register(
      bindings, Request(ApnsContact("192.0.2.99:6000", kTokB, ";+sip.instance=\"<urn:uuid:1>\"")));
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].contact.host, "192.0.2.99");
  EXPECT_EQ(bindings[0].push->prid, kTokB);
}

TEST_F(RegistrarTest, DifferentInstancesAndRegIdsAreSeparateBindings) {
  auto bindings = Register(
      {}, Request(ApnsContact("192.0.2.1:5060", kTokA, ";+sip.instance=\"<urn:uuid:1>\"")));
  bindings = Register(
      bindings, Request(ApnsContact("192.0.2.2:5060", kTokB, ";+sip.instance=\"<urn:uuid:2>\"")));
  EXPECT_EQ(bindings.size(), 2u);
  bindings = Register(bindings, Request("<sip:alice@192.0.2.3>;+sip.instance=\"<urn:uuid:2>\";"
                                        "reg-id=2"));
  EXPECT_EQ(bindings.size(), 3u);
}

TEST_F(RegistrarTest, WithoutInstanceSamePushTokenReplaces) {
  auto bindings = Register({}, Request(ApnsContact("192.0.2.1:5060", kTokA)));
  clock_.Advance(absl::Seconds(10));
  // New port after a network change, same app and token: the same device.
  bindings = Register(bindings, Request(ApnsContact("192.0.2.1:5099", kTokA)));
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].contact.port, 5099);
  // Another token: another device.
  bindings = Register(bindings, Request(ApnsContact("192.0.2.1:5100", kTokB)));
  EXPECT_EQ(bindings.size(), 2u);
}

TEST_F(RegistrarTest, ExpiresZeroRemovesOnlyThatDevice) {
  auto bindings = Register({}, Request("<sip:alice@h1>, <sip:alice@h2>", 600));
  ASSERT_EQ(bindings.size(), 2u);
  bindings = Register(bindings, Request("<sip:alice@h1>;expires=0"));
  EXPECT_THAT(Hosts(bindings), ElementsAre("h2"));
}

TEST_F(RegistrarTest, WildcardRemovesAll) {
  auto bindings = Register({}, Request("<sip:alice@h1>, <sip:alice@h2>", 600));
  bindings = Register(bindings, Request("*", 0));
  EXPECT_TRUE(bindings.empty());
}

TEST_F(RegistrarTest, BackendGrantedExpiryIsUsedAndZeroGrantRemoves) {
  RegisterRequest r = Request("<sip:alice@h1>, <sip:alice@h2>", 3600);
  auto bindings =
      ApplyRegistration({}, r, {absl::Seconds(120), absl::ZeroDuration()}, clock_.Now(), policy_);
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].expires_at, clock_.Now() + absl::Seconds(120));
  // Missing grant entries count as removal.
  EXPECT_TRUE(ApplyRegistration({}, r, {}, clock_.Now(), policy_).empty());
}

TEST_F(RegistrarTest, BindingsExpireOnTime) {
  auto bindings = Register({}, Request("<sip:alice@h1>", 60));
  bindings = Register(bindings, Request("<sip:alice@h2>", 600));
  clock_.Advance(absl::Seconds(59));
  EXPECT_EQ(Register(bindings, Request("<sip:alice@h3>", 600)).size(), 3u);
  clock_.Advance(absl::Seconds(1));  // h1 expires exactly now
  EXPECT_THAT(Hosts(Register(bindings, Request("<sip:alice@h3>", 600))),
              ::testing::UnorderedElementsAre("h2", "h3"));
}

TEST_F(RegistrarTest, OldestEvictedAboveMaxPerAor) {
  policy_.max_contacts_per_aor = 3;
  std::vector<Binding> bindings;
  for (int i = 1; i <= 5; ++i) {
    bindings = Register(bindings, Request("<sip:alice@h" + std::to_string(i) + ">", 3600));
    clock_.Advance(absl::Seconds(1));
  }
  EXPECT_THAT(Hosts(bindings), ElementsAre("h5", "h4", "h3"));
  // Refreshing h3 makes it the newest; the next new contact evicts h4.
  bindings = Register(bindings, Request("<sip:alice@h3>", 3600));
  clock_.Advance(absl::Seconds(1));
  bindings = Register(bindings, Request("<sip:alice@h6>", 3600));
  EXPECT_THAT(Hosts(bindings), ElementsAre("h6", "h3", "h5"));
}

TEST_F(RegistrarTest, SortedByQThenMostRecent) {
  auto bindings = Register({}, Request("<sip:alice@low>;q=0.1", 600));
  clock_.Advance(absl::Seconds(1));
  bindings = Register(bindings, Request("<sip:alice@high>;q=0.9", 600));
  clock_.Advance(absl::Seconds(1));
  bindings = Register(bindings, Request("<sip:alice@newest>", 600));  // q = 1.0
  clock_.Advance(absl::Seconds(1));
  bindings = Register(bindings, Request("<sip:alice@low2>;q=0.1", 600));
  EXPECT_THAT(Hosts(bindings), ElementsAre("newest", "high", "low2", "low"));
}

TEST_F(RegistrarTest, SameDeviceRule) {
  RegisterRequest r = Request(ApnsContact("h1", kTokA, ";+sip.instance=\"<urn:uuid:1>\""));
  Binding a = MakeBinding(r, r.contacts.contacts[0], absl::Seconds(60), clock_.Now());
  Binding b = a;
  b.contact.host = "h2";
  EXPECT_TRUE(SameDevice(a, b));  // same instance
  b.instance_id = "<urn:uuid:2>";
  EXPECT_TRUE(SameDevice(a, b));  // same token still identifies the device
  b.push.reset();
  EXPECT_FALSE(SameDevice(a, b));  // different instance, no shared token
  b.contact = a.contact;
  EXPECT_FALSE(SameDevice(a, b));  // two instances are two devices even at one address
  b.instance_id.clear();
  EXPECT_TRUE(SameDevice(a, b));  // one side without instance: same URI
}

}  // namespace
}  // namespace pushgate::proxy
