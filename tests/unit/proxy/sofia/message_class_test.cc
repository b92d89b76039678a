#include "proxy/sofia/message_class.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>

#include <string>

#include "gtest/gtest.h"
#include "proxy/sofia/sofia_util.h"

namespace pushgate::proxy::sofia {
namespace {

MsgPtr Parse(const std::string& text) {
  MsgPtr msg(msg_make(ProxyMessageClass(), 0, text.data(), static_cast<isize_t>(text.size())));
  EXPECT_TRUE(msg) << text;
  return msg;
}

std::string Options(const std::string& via_line) {
  return "OPTIONS sip:bob@example.org SIP/2.0\r\n" + via_line +
         "\r\n"
         "From: <sip:alice@example.org>;tag=1\r\n"
         "To: <sip:bob@example.org>\r\n"
         "Call-ID: mclass-1\r\n"
         "CSeq: 1 OPTIONS\r\n"
         "Content-Length: 0\r\n\r\n";
}

TEST(ProxyMessageClassTest, ViaMaddrIsKeptAsTextButDoesNotSteerResponses) {
  for (const char* line : {"Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-1;maddr=198.51.100.7",
                           "v: SIP/2.0/UDP 192.0.2.1:5062;maddr=198.51.100.7;branch=z9hG4bK-1"}) {
    MsgPtr msg = Parse(Options(line));
    ASSERT_TRUE(msg);
    const sip_t* sip = sip_object(msg.get());
    ASSERT_NE(sip->sip_via, nullptr) << line;
    EXPECT_EQ(sip->sip_via->v_maddr, nullptr) << line;
    EXPECT_STREQ(msg_params_find(sip->sip_via->v_params, "maddr="), "198.51.100.7") << line;
    EXPECT_STREQ(sip->sip_via->v_branch, "z9hG4bK-1") << line;  // other parameters as before
  }
  // With sofia's default class the same Via names maddr: what nta would answer to.
  const std::string text =
      Options("Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1;maddr=198.51.100.7");
  MsgPtr plain(msg_make(sip_default_mclass(), 0, text.data(), static_cast<isize_t>(text.size())));
  ASSERT_TRUE(plain);
  EXPECT_STREQ(sip_object(plain.get())->sip_via->v_maddr, "198.51.100.7");
}

TEST(ProxyMessageClassTest, ViaAddedLaterIsNeitherSteeredNorRefused) {
  MsgPtr msg = Parse(Options("Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-1"));
  ASSERT_TRUE(msg);
  sip_t* sip = sip_object(msg.get());
  // A parameter added afterwards goes through the same update.
  ASSERT_EQ(msg_header_add_param(msg_home(msg.get()), sip->sip_via->v_common, "maddr=203.0.113.9"),
            0);
  EXPECT_EQ(sip->sip_via->v_maddr, nullptr);
  // A Via made by sofia's own class (as nta does for its own) can still be inserted.
  sip_via_t* ours = sip_via_make(msg_home(msg.get()), "SIP/2.0/UDP 192.0.2.200;branch=z9hG4bK-p");
  ASSERT_NE(ours, nullptr);
  ASSERT_EQ(msg_header_insert(msg.get(), reinterpret_cast<msg_pub_t*>(sip),
                              reinterpret_cast<msg_header_t*>(ours)),
            0);
  EXPECT_STREQ(sip->sip_via->v_host, "192.0.2.200");
  ASSERT_NE(sip->sip_via->v_next, nullptr);
  EXPECT_STREQ(sip->sip_via->v_next->v_host, "192.0.2.1");
}

}  // namespace
}  // namespace pushgate::proxy::sofia
