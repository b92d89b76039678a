#include "proxy/sofia/sofia_util.h"

#include <sofia-sip/sip_header.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::proxy::sofia {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

MsgPtr Parse(const std::string& text) {
  MsgPtr msg(msg_make(sip_default_mclass(), 0, text.data(), static_cast<isize_t>(text.size())));
  EXPECT_TRUE(msg) << text;
  return msg;
}

std::string Request(const std::string& extra_headers) {
  return "OPTIONS sip:bob@example.org SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-top\r\n"
         "Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK-next\r\n"
         "From: <sip:alice@example.org>;tag=1\r\n"
         "To: <sip:bob@example.org>\r\n"
         "Call-ID: util-1\r\n"
         "CSeq: 1 OPTIONS\r\n" +
         extra_headers +
         "Contact: <sip:alice@192.0.2.1>\r\n"
         "Contact: <sip:alice@192.0.2.3>, <sip:alice@192.0.2.4>\r\n"
         "Content-Length: 0\r\n\r\n";
}

struct MaxForwardsCase {
  const char* header;  // "" for none
  const char* expected;
};

class DecrementMaxForwardsTest : public ::testing::TestWithParam<MaxForwardsCase> {};

TEST_P(DecrementMaxForwardsTest, Decrements) {
  MsgPtr msg = Parse(Request(GetParam().header));
  ASSERT_TRUE(msg);
  DecrementMaxForwards(msg.get(), sip_object(msg.get()));
  EXPECT_THAT(MessageText(msg.get()),
              HasSubstr(std::string("Max-Forwards: ") + GetParam().expected + "\r\n"));
}

INSTANTIATE_TEST_SUITE_P(Values, DecrementMaxForwardsTest,
                         ::testing::Values(MaxForwardsCase{"Max-Forwards: 10\r\n", "9"},
                                           MaxForwardsCase{"Max-Forwards: 1\r\n", "0"},
                                           MaxForwardsCase{"Max-Forwards: 0\r\n", "0"},
                                           MaxForwardsCase{"Max-Forwards: 200\r\n", "69"},
                                           MaxForwardsCase{"", "69"}));

TEST(SofiaUtilTest, RemoveTopViaKeepsTheOthers) {
  MsgPtr msg = Parse(Request(""));
  ASSERT_TRUE(msg);
  RemoveTopVia(msg.get(), sip_object(msg.get()));
  std::string text = MessageText(msg.get());
  EXPECT_THAT(text, Not(HasSubstr("z9hG4bK-top")));
  EXPECT_THAT(text, HasSubstr("z9hG4bK-next"));
}

TEST(SofiaUtilTest, RemoveContactsRemovesEveryContact) {
  MsgPtr msg = Parse(Request(""));
  ASSERT_TRUE(msg);
  EXPECT_EQ(ContactValues(sip_object(msg.get())).size(), 3u);
  RemoveContacts(msg.get(), sip_object(msg.get()));
  EXPECT_TRUE(ContactValues(sip_object(msg.get())).empty());
  EXPECT_THAT(MessageText(msg.get()), Not(HasSubstr("Contact")));
}

TEST(SofiaUtilTest, RouteUrlIsNullForNoRoute) {
  EXPECT_EQ(RouteUrl(""), nullptr);
  std::string route = "sip:backend.example.org;transport=tcp";
  EXPECT_EQ(reinterpret_cast<const char*>(RouteUrl(route)), route.c_str());
}

}  // namespace
}  // namespace pushgate::proxy::sofia
