#include "proxy/core/contact.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

TEST(ParseContactsTest, NameAddrWithQuotedDisplayNameAndParams) {
  auto list = ParseContacts(
      R"("Alice \"A\" Smith" <sip:alice@192.0.2.10:5062;transport=tcp;pn-prid=ab>;expires=3600;)"
      R"(q=0.7;+sip.instance="<urn:uuid:0001>";reg-id=1;+sip.pns)");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->contacts.size(), 1u);
  EXPECT_FALSE(list->wildcard);
  const Contact& c = list->contacts[0];
  EXPECT_EQ(c.display_name, "Alice \"A\" Smith");
  EXPECT_EQ(c.uri.host, "192.0.2.10");
  EXPECT_EQ(Param(c.uri, "pn-prid"), "ab");
  EXPECT_EQ(c.expires(), 3600u);
  EXPECT_FLOAT_EQ(c.q(), 0.7f);
  EXPECT_EQ(c.instance(), "<urn:uuid:0001>");
  EXPECT_EQ(c.reg_id(), 1u);
  EXPECT_EQ(c.param("+SIP.PNS"), "");
  EXPECT_EQ(c.param("+sip.instance"), "\"<urn:uuid:0001>\"");
}

TEST(ParseContactsTest, BareFormParamsBelongToTheHeader) {
  auto list = ParseContacts("sip:bob@example.org;expires=60;q=1");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->contacts.size(), 1u);
  EXPECT_TRUE(list->contacts[0].uri.params.empty());
  EXPECT_EQ(list->contacts[0].expires(), 60u);
}

TEST(ParseContactsTest, TokenDisplayNameAndListWithCommasInQuotesAndBrackets) {
  auto list =
      ParseContacts(R"(Bob Jones <sip:bob@a.example;x=1>, "Carol, C" <sip:carol@b.example>;q=0.5 ,)"
                    R"( <sip:dave@[2001:db8::5]:5060>;+sip.instance="<urn:uuid:a,b>")");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->contacts.size(), 3u);
  EXPECT_EQ(list->contacts[0].display_name, "Bob Jones");
  EXPECT_EQ(Param(list->contacts[0].uri, "x"), "1");
  EXPECT_EQ(list->contacts[1].display_name, "Carol, C");
  EXPECT_FLOAT_EQ(list->contacts[1].q(), 0.5f);
  EXPECT_EQ(list->contacts[2].uri.host, "2001:db8::5");
  EXPECT_EQ(list->contacts[2].instance(), "<urn:uuid:a,b>");
  EXPECT_FLOAT_EQ(list->contacts[2].q(), 1.0f);
  EXPECT_EQ(list->contacts[2].expires(), std::nullopt);
}

TEST(ParseContactsTest, Wildcard) {
  auto list = ParseContacts("  * ");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->wildcard);
  EXPECT_TRUE(list->contacts.empty());
  auto mixed = ParseContacts("*, <sip:a@b>");
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_TRUE(mixed->wildcard);
  EXPECT_EQ(mixed->contacts.size(), 1u);
}

TEST(ParseContactsTest, AppendAcrossHeaders) {
  ContactList list;
  ASSERT_TRUE(AppendContacts("<sip:a@b>", list).ok());
  ASSERT_TRUE(AppendContacts("<sip:c@d>;expires=0", list).ok());
  ASSERT_EQ(list.contacts.size(), 2u);
  EXPECT_EQ(list.contacts[1].expires(), 0u);
}

TEST(ParseContactsTest, ExpiresSaturates) {
  auto c = ParseContact("<sip:a@b>;expires=99999999999");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->expires(), 4294967295u);
}

TEST(ParseContactsTest, MalformedGivesPreciseReason) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "Contact: empty header"},
           {"<sip:a@b", "Contact: unterminated <"},
           {"\"Alice <sip:a@b>", "Contact: unterminated quoted string"},
           {"\"Alice\" sip:a@b", "display name not followed by <URI>"},
           {"<sip:a@b>;q=1.5", "Contact: invalid q value \"1.5\""},
           {"<sip:a@b>;q=0.1234", "invalid q value"},
           {"<sip:a@b>;q=abc", "invalid q value"},
           {"<sip:a@b>;expires=-1", "Contact: invalid expires value \"-1\""},
           {"<sip:a@b>;expires=1h", "invalid expires value"},
           {"<sip:a@b>;reg-id=0", "invalid reg-id value \"0\""},
           {"<sip:a@b>;reg-id=x", "invalid reg-id"},
           {"<tel:+1234>", "Contact: URI: unsupported scheme \"tel\""},
           {"<sip:a@>", "Contact: URI: empty host"},
           {"<sip:a@b>, ", "trailing comma"},
           {"<sip:a@b>,,<sip:c@d>", "empty contact"},
           {"<sip:a@b> junk", "unexpected character 'j'"},
           {"<sip:a@b>;=x", "empty parameter name"},
           {"<sip:a@b>;expires=", "empty value for parameter \"expires\""},
           {"sip:a@b?x=y", "URI with headers must be in <...>"},
           {"Al@ce <sip:a@b>", "invalid display name"},
       }) {
    auto list = ParseContacts(c.text);
    ASSERT_FALSE(list.ok()) << "accepted: " << c.text;
    EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(list.status().message()), HasSubstr(c.message)) << c.text;
  }
}

TEST(ParseContactTest, RejectsListsAndWildcard) {
  EXPECT_FALSE(ParseContact("*").ok());
  EXPECT_FALSE(ParseContact("<sip:a@b>, <sip:c@d>").ok());
}

TEST(FormatContactTest, RoundTrip) {
  const char* text =
      R"("Al \"x\"" <sip:alice@[2001:db8::1]:5060;transport=tcp>;expires=60;+sip.instance="<urn:uuid:1>";+sip.pns)";
  auto c = ParseContact(text);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(FormatContact(*c), text);
  auto again = ParseContact(FormatContact(*c));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *c);
}

TEST(FormatContactsTest, JoinsAndWildcard) {
  EXPECT_EQ(FormatContacts(*ParseContacts("*")), "*");
  EXPECT_EQ(FormatContacts(*ParseContacts("sip:a@b;q=0.5, c <sip:c@d>")),
            "<sip:a@b>;q=0.5, \"c\" <sip:c@d>");
}

TEST(ContactParamTest, SetAndRemove) {
  Contact c = *ParseContact("<sip:a@b>;Expires=10;q=0.1");
  c.SetParam("expires", "20");
  EXPECT_EQ(c.expires(), 20u);
  c.RemoveParam("Q");
  EXPECT_THAT(c.params, ::testing::ElementsAre(Pair("Expires", "20")));
  EXPECT_FLOAT_EQ(c.q(), 1.0f);
}

TEST(UnquoteTest, Escapes) {
  EXPECT_EQ(Unquote("\"a\\\"b\\\\c\""), "a\"b\\c");
  EXPECT_EQ(Unquote("plain"), "plain");
  EXPECT_EQ(Unquote("\""), "\"");
}

}  // namespace
}  // namespace pushgate::proxy
