#include "proxy/core/register_plan.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"

namespace pushgate::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kSecret[] = "register-plan-test-secret";
constexpr char kTok[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

std::string ApnsContact(const std::string& host, const std::string& header_params = "") {
  return "<sip:alice@" + host + ";transport=tcp;pn-provider=apns;pn-prid=" + kTok +
         ";pn-param=ABCD123456.org.example.phone.voip>" + header_params;
}

RegisterFacts Facts(std::vector<std::string> contacts, std::optional<uint32_t> expires = {}) {
  RegisterFacts f;
  f.request_uri = "sip:example.org";
  f.to = "sip:Alice@Example.org";
  f.contacts = std::move(contacts);
  f.expires = expires;
  f.call_id = "call-1";
  f.cseq = 3;
  f.source = TransportInfo{Transport::kTcp, "198.51.100.7", 40000};
  return f;
}

class RegisterPlanTest : public ::testing::Test {
 protected:
  RegisterPlan Plan(RegisterFacts facts) {
    return PlanRegister(std::move(facts), domains_, policy_);
  }

  DomainPolicy domains_{{"example.org"}};
  RegistrarPolicy policy_;
  MasqueradeCodec codec_{kSecret};
  TransportInfo advertised_{Transport::kUdp, "192.0.2.10", 5060};
};

struct RejectCase {
  const char* name;
  void (*change)(RegisterFacts&);
  Outcome outcome;
  const char* reason;  // a substring of the reason phrase
};

class PlanRejectionTest : public RegisterPlanTest,
                          public ::testing::WithParamInterface<RejectCase> {};

TEST_P(PlanRejectionTest, RejectsWithOutcome) {
  RegisterFacts facts = Facts({ApnsContact("203.0.113.9")});
  GetParam().change(facts);
  RegisterPlan plan = Plan(std::move(facts));
  ASSERT_TRUE(plan.rejection.has_value()) << GetParam().name;
  EXPECT_EQ(plan.rejection->outcome, GetParam().outcome) << GetParam().name;
  EXPECT_EQ(plan.rejection->status, StatusOf(GetParam().outcome)) << GetParam().name;
  EXPECT_THAT(plan.rejection->reason, HasSubstr(GetParam().reason)) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    InOrder, PlanRejectionTest,
    ::testing::Values(RejectCase{"request URI",
                                 [](RegisterFacts& f) { f.request_uri = "tel:+123"; },
                                 Outcome::kBadRequest, "unsupported scheme"},
                      RejectCase{"no To", [](RegisterFacts& f) { f.to.reset(); },
                                 Outcome::kBadRequest, "Missing To header"},
                      RejectCase{"bad To", [](RegisterFacts& f) { f.to = "sip:"; },
                                 Outcome::kBadRequest, "To: URI"},
                      RejectCase{"domain", [](RegisterFacts& f) { f.to = "sip:alice@other.org"; },
                                 Outcome::kDomainNotServed, "Domain not served"},
                      RejectCase{"domain before contacts",
                                 [](RegisterFacts& f) {
                                   f.to = "sip:alice@other.org";
                                   f.contacts = {"<sip:"};
                                 },
                                 Outcome::kDomainNotServed, "Domain"},
                      RejectCase{"contact",
                                 [](RegisterFacts& f) { f.contacts = {"<sip:a@b;q=1.5>;q=2"}; },
                                 Outcome::kBadRequest, "Contact:"},
                      RejectCase{"unparsable contact header",
                                 [](RegisterFacts& f) { f.contact_unparsable = true; },
                                 Outcome::kBadRequest, "Contact: malformed header"},
                      RejectCase{"interval", [](RegisterFacts& f) { f.expires = 5; },
                                 Outcome::kIntervalTooBrief, "Interval Too Brief"},
                      RejectCase{"wildcard", [](RegisterFacts& f) { f.contacts = {"*"}; },
                                 Outcome::kContactRules, "Contact: * requires Expires: 0"}));

TEST_F(RegisterPlanTest, AcceptedRequestCarriesTheAorAndTheAskedExpiries) {
  RegisterPlan plan = Plan(Facts({ApnsContact("203.0.113.9", ";expires=600")}, 3600));
  ASSERT_FALSE(plan.rejection.has_value()) << plan.rejection->reason;
  EXPECT_EQ(plan.request.aor, "sip:Alice@example.org");
  EXPECT_EQ(plan.request.call_id, "call-1");
  EXPECT_EQ(plan.request.cseq, 3u);
  EXPECT_EQ(plan.request.source.port, 40000);
  EXPECT_EQ(plan.to.host, "Example.org");
  EXPECT_THAT(plan.check.expiries, ElementsAre(absl::Seconds(600)));
}

TEST_F(RegisterPlanTest, NoContactIsAFetch) {
  RegisterPlan plan = Plan(Facts({}));
  ASSERT_FALSE(plan.rejection.has_value());
  EXPECT_TRUE(plan.check.fetch);
}

TEST_F(RegisterPlanTest, MaskedContactsHideThePhoneAndItsPushParameters) {
  RegisterPlan plan = Plan(Facts(
      {ApnsContact("203.0.113.9", ";+sip.instance=\"<urn:uuid:1>\";reg-id=1;q=0.5;expires=600")}));
  ASSERT_FALSE(plan.rejection.has_value());
  MaskedContacts masked = MaskContacts(codec_, plan.request, plan.check, advertised_, std::nullopt);
  ASSERT_EQ(masked.values.size(), 1u);
  const std::string& value = masked.values[0];
  EXPECT_THAT(value, HasSubstr("@192.0.2.10:5060"));
  EXPECT_THAT(value, Not(HasSubstr("203.0.113.9")));
  EXPECT_THAT(value, Not(HasSubstr("pn-")));
  EXPECT_THAT(value, Not(HasSubstr("reg-id")));
  EXPECT_THAT(value, HasSubstr("+sip.instance=\"<urn:uuid:1>\""));
  EXPECT_THAT(value, HasSubstr("q=0.5"));
  EXPECT_THAT(value, HasSubstr("expires=600"));
  EXPECT_EQ(masked.pns_provider, "apns");
  ASSERT_EQ(masked.masquerade_values.size(), 1u);
  EXPECT_THAT(value, HasSubstr(absl::StrCat("pgw=", masked.masquerade_values[0])));

  // The value leads back to the phone's own address and the AOR.
  auto contact = ParseContact(value);
  ASSERT_TRUE(contact.ok()) << contact.status();
  auto target = codec_.Restore(contact->uri);
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->original, (TransportInfo{Transport::kTcp, "203.0.113.9", 5060}));
  EXPECT_EQ(target->aor, "sip:Alice@example.org");
  // ... and names the phone (its instance), so a call to it reaches that phone only.
  EXPECT_EQ(target->device_tag, DeviceTag("instance:<urn:uuid:1>"));
}

// Two phones of one AOR: two masqueraded contacts naming two devices; without an instance the
// push key names the phone; the value never shows the instance or the token.
TEST_F(RegisterPlanTest, EachMaskedContactNamesItsOwnDevice) {
  RegisterPlan plan = Plan(Facts({ApnsContact("203.0.113.9", ";+sip.instance=\"<urn:uuid:1>\""),
                                  "<sip:alice@203.0.113.10;pn-provider=fcm;pn-prid=tok2;"
                                  "pn-param=proj>"}));
  ASSERT_FALSE(plan.rejection.has_value());
  MaskedContacts masked = MaskContacts(codec_, plan.request, plan.check, advertised_, std::nullopt);
  ASSERT_EQ(masked.values.size(), 2u);
  std::vector<std::string> tags;
  for (const std::string& v : masked.values) {
    auto target = codec_.Restore(ParseContact(v)->uri);
    ASSERT_TRUE(target.ok()) << target.status();
    tags.push_back(target->device_tag);
    EXPECT_THAT(v, Not(HasSubstr("tok2")));
  }
  EXPECT_EQ(tags[0], DeviceTag("instance:<urn:uuid:1>"));
  EXPECT_EQ(tags[1],
            DeviceTag(DeviceKey(MakeBinding(plan.request, plan.request.contacts.contacts[1],
                                            absl::ZeroDuration(), absl::Time()))));
  EXPECT_NE(tags[0], tags[1]);
  EXPECT_EQ(tags[1].size(), 8u);
}

TEST_F(RegisterPlanTest, InsertDomainCarriesTheAorDomain) {
  RegisterPlan plan = Plan(Facts({"<sip:alice@203.0.113.9>"}));
  MaskedContacts masked =
      MaskContacts(codec_, plan.request, plan.check, advertised_, std::string("example.org"));
  ASSERT_EQ(masked.values.size(), 1u);
  auto target = codec_.Restore(ParseContact(masked.values[0])->uri);
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_TRUE(target->insert_domain);
  EXPECT_EQ(target->aor_domain, "example.org");
  EXPECT_EQ(target->device_tag, "") << "the value names the AOR, not one phone";
  EXPECT_EQ(masked.pns_provider, "");
}

TEST(ContactAddressTest, DefaultPortsFollowTheTransport) {
  EXPECT_EQ(ContactAddress(*ParseUri("sip:a@192.0.2.1")),
            (TransportInfo{Transport::kUdp, "192.0.2.1", 5060}));
  EXPECT_EQ(ContactAddress(*ParseUri("sips:a@192.0.2.1")),
            (TransportInfo{Transport::kTls, "192.0.2.1", 5061}));
  EXPECT_EQ(ContactAddress(*ParseUri("sip:a@[2001:db8::1]:7000;transport=tcp")),
            (TransportInfo{Transport::kTcp, "2001:db8::1", 7000}));
}

struct GrantCase {
  const char* name;
  std::vector<absl::Duration> asked;
  std::string backend_contacts;  // Contact values of the 2xx ("" for none); "#N" = value N
  std::optional<uint32_t> expires_header;
  std::vector<absl::Duration> granted;
};

class GrantedExpiriesTest : public ::testing::TestWithParam<GrantCase> {};

TEST_P(GrantedExpiriesTest, Grants) {
  const GrantCase& c = GetParam();
  RegisterCheck check;
  check.expiries = c.asked;
  std::vector<std::string> values;
  for (size_t i = 0; i < c.asked.size(); ++i) values.push_back(absl::StrCat("v", i));
  ContactList listed;
  if (!c.backend_contacts.empty()) {
    ASSERT_TRUE(AppendContacts(c.backend_contacts, listed).ok());
  }
  EXPECT_EQ(GrantedExpiries(check, values, listed, c.expires_header), c.granted) << c.name;
}

const absl::Duration k60 = absl::Seconds(60);
const absl::Duration k600 = absl::Seconds(600);
const absl::Duration k3600 = absl::Seconds(3600);
const absl::Duration kZero = absl::ZeroDuration();

INSTANTIATE_TEST_SUITE_P(
    Backend2xx, GrantedExpiriesTest,
    ::testing::Values(
        GrantCase{"nothing listed: what was asked", {k3600, k600}, "", std::nullopt, {k3600, k600}},
        GrantCase{"nothing listed: shortened by Expires", {k3600, k60}, "", 600, {k600, k60}},
        GrantCase{"nothing listed: removal stays removal", {kZero}, "", 600, {kZero}},
        GrantCase{"listed with its own expires",
                  {k3600, k3600},
                  "<sip:a@gw;pgw=v1>;expires=60, <sip:a@gw;pgw=v0>;expires=600",
                  3600,
                  {k600, k60}},
        GrantCase{"listed without expires: the Expires header",
                  {k3600},
                  "<sip:a@gw;pgw=v0>",
                  600,
                  {k600}},
        GrantCase{"listed without any expires: what was asked",
                  {k3600},
                  "<sip:a@gw;pgw=v0>",
                  std::nullopt,
                  {k3600}},
        GrantCase{"not listed: not registered",
                  {k3600, k3600},
                  "<sip:a@gw;pgw=v1>;expires=60",
                  std::nullopt,
                  {kZero, k60}},
        GrantCase{"another device's contact only",
                  {k3600},
                  "<sip:b@gw;pgw=zz>;expires=60",
                  std::nullopt,
                  {kZero}}));

TEST(GrantedExpiriesTest, FetchAndWildcardGrantNothing) {
  RegisterCheck fetch;
  fetch.fetch = true;
  EXPECT_THAT(GrantedExpiries(fetch, {}, {}, 60), IsEmpty());
  RegisterCheck wildcard;
  wildcard.wildcard = true;
  EXPECT_THAT(GrantedExpiries(wildcard, {}, {}, 0), IsEmpty());
}

TEST(AnswerContactsTest, ThePhonesOwnContactsWithTheGrantedExpiry) {
  RegisterRequest request;
  ASSERT_TRUE(AppendContacts("<sip:a@192.0.2.1;pn-provider=fcm;pn-prid=x>;expires=3600, "
                             "<sip:a@192.0.2.2>",
                             request.contacts)
                  .ok());
  EXPECT_THAT(AnswerContacts(request, {k600, kZero}),
              ElementsAre("<sip:a@192.0.2.1;pn-provider=fcm;pn-prid=x>;expires=600"));
  EXPECT_THAT(AnswerContacts(request, {k600}), ElementsAre(HasSubstr("192.0.2.1")))
      << "a contact without a grant is not listed";
  RegisterRequest wildcard;
  wildcard.contacts.wildcard = true;
  EXPECT_THAT(AnswerContacts(wildcard, {}), IsEmpty());
}

TEST(FetchContactsTest, NoPushParametersAndTheRemainingExpiry) {
  FakeClock clock;
  Binding live;
  live.contact = *ParseUri(
      absl::StrCat("sip:a@192.0.2.1;transport=tcp;pn-provider=apns;pn-prid=", kTok, ";pn-param=x"));
  live.expires_at = clock.Now() + absl::Seconds(90);
  Binding ending = live;
  ending.contact = *ParseUri("sip:b@192.0.2.2");
  ending.expires_at = clock.Now() - absl::Seconds(1);
  EXPECT_THAT(
      FetchContacts({live, ending}, clock.Now()),
      ElementsAre("<sip:a@192.0.2.1;transport=tcp>;expires=90", "<sip:b@192.0.2.2>;expires=0"));
}

TEST(RegisterPlanHelpersTest, FeatureCapsFlowKeepContactNamesAndLabels) {
  EXPECT_EQ(FeatureCaps("apns"), "*;+sip.pns=\"apns\"");
  RegisterCheck check;
  check.expiries = {k60, k3600};
  EXPECT_EQ(FlowKeepTime(check, absl::Seconds(32)), absl::Seconds(3630));
  check.expiries = {kZero};
  EXPECT_EQ(FlowKeepTime(check, absl::Seconds(32)), absl::Seconds(62));
  EXPECT_TRUE(NamesContactHeader("Contact"));
  EXPECT_TRUE(NamesContactHeader("contact"));
  EXPECT_TRUE(NamesContactHeader("m"));
  EXPECT_TRUE(NamesContactHeader("M"));
  EXPECT_FALSE(NamesContactHeader("Max-Forwards"));
  EXPECT_FALSE(NamesContactHeader("Via"));
  EXPECT_EQ(BackendRefusalLabel(401), "backend_4xx");
  EXPECT_EQ(BackendRefusalLabel(503), "backend_5xx");
}

TEST(AddressUriTest, NextHopFormNamesEveryTransport) {
  EXPECT_EQ(AddressUri({Transport::kUdp, "192.0.2.1", 5060}), "sip:192.0.2.1:5060;transport=udp");
  EXPECT_EQ(AddressUri({Transport::kTls, "2001:db8::1", 5061}),
            "sips:[2001:db8::1]:5061;transport=tls");
  EXPECT_EQ(AddressUri({Transport::kUdp, "192.0.2.1", 0}), "sip:192.0.2.1:0;transport=udp");
}

TEST(AddressUriTest, ListenerForm) {
  EXPECT_EQ(UriHost("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(UriHost("2001:db8::1"), "[2001:db8::1]");
  EXPECT_EQ(BareHost("[2001:db8::1]"), "2001:db8::1");
  EXPECT_EQ(BareHost("2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(BareHost("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(AddressUri({Transport::kUdp, "192.0.2.1", 5060}, UriForm::kListener),
            "sip:192.0.2.1:5060;transport=udp");
  EXPECT_EQ(AddressUri({Transport::kTcp, "2001:db8::1", 5070}, UriForm::kListener),
            "sip:[2001:db8::1]:5070;transport=tcp");
  EXPECT_EQ(AddressUri({Transport::kTls, "gw.example.org", 5061}, UriForm::kListener),
            "sips:gw.example.org:5061");
  EXPECT_EQ(AddressUri({Transport::kUdp, "::", 0}, UriForm::kListener), "sip:[::]:*;transport=udp");
}

}  // namespace
}  // namespace pushgate::proxy
