#include "proxy/sofia/forwarding.h"

#include <gtest/gtest.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip_header.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proxy/sofia/call_table.h"

namespace pushgate::proxy::sofia {
namespace {

// UDP on 192.0.2.1:5060, TCP on 5070, TLS by name (5061).
RouteSet Gateway() {
  RouteSetConfig config;
  config.record_route = "sip:192.0.2.1:5060;transport=udp";
  config.by_transport[Transport::kTcp] = "sip:192.0.2.1:5070;transport=tcp";
  config.by_transport[Transport::kTls] = "sips:gw.example.org";
  return *RouteSet::Create(config);
}

// A parsed BYE with these Route entries and Max-Forwards (none when < 0).
MsgPtr Bye(const std::vector<std::string>& routes, int max_forwards = 70) {
  std::string text =
      "BYE sip:bob@10.0.0.5 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\r\n"
      "From: <sip:alice@example.org>;tag=a\r\n"
      "To: <sip:bob@example.org>;tag=b\r\n"
      "Call-ID: c1\r\n"
      "CSeq: 2 BYE\r\n";
  for (const std::string& r : routes) absl::StrAppend(&text, "Route: <", r, ">\r\n");
  if (max_forwards >= 0) absl::StrAppend(&text, "Max-Forwards: ", max_forwards, "\r\n");
  absl::StrAppend(&text, "Content-Length: 0\r\n\r\n");
  MsgPtr msg(msg_make(sip_default_mclass(), 0, text.data(), static_cast<ssize_t>(text.size())));
  EXPECT_NE(msg, nullptr);
  return msg;
}

TEST(OwnRoutesOfTest, CountsOursOnTopAndPairs) {
  RouteSet set = Gateway();
  struct Case {
    std::vector<std::string> routes;
    int count;
  };
  const Case cases[] = {
      {{}, 0},
      {{"sip:backend.example.org;lr"}, 0},
      {{"sip:192.0.2.1;lr"}, 1},
      {{"sip:192.0.2.1;lr", "sip:backend.example.org;lr"}, 1},
      {{"sip:192.0.2.1:5070;transport=tcp;lr", "sip:192.0.2.1;lr"}, 2},
      {{"sip:192.0.2.1;lr", "sip:192.0.2.1:5060;lr"}, 1},  // a spiral
      {{"sips:gw.example.org;lr"}, 1},
      {{"sip:gw.example.org;lr"}, 0},  // 5060: not ours
      {{"sip:192.0.2.1:99999;lr"}, 0},
  };
  for (const Case& c : cases) {
    MsgPtr msg = Bye(c.routes);
    const sip_t* sip = sip_object(msg.get());
    std::string name = absl::StrJoin(c.routes, ",");
    OwnRouteEntries own = OwnRoutesOf(set, sip);
    EXPECT_EQ(own.count, c.count) << name;
    EXPECT_EQ(own.parsed.size(), static_cast<size_t>(c.count)) << name;
    EXPECT_EQ(OwnRoutesOf(set, sip, /*parse=*/false).count, c.count) << name;
  }
  MsgPtr msg = Bye({"sip:192.0.2.1;lr"});
  EXPECT_EQ(OwnRoutesOf(RouteSet(), sip_object(msg.get())).count, 0);
}

// SipProxy's own Route check (a phone using us as its outbound proxy): our listening and
// advertised addresses; a URI without a port names the scheme's default port.
TEST(IsOwnUrlTest, ListeningAddressesWithTheSchemesDefaultPort) {
  RouteSetConfig config;
  config.also_ours = {{Transport::kUdp, "192.0.2.1", 5060},
                      {Transport::kTls, "192.0.2.1", 5061},
                      {Transport::kUdp, "2001:db8::1", 5070}};
  RouteSet ours = *RouteSet::Create(config);
  struct Case {
    std::string route;
    bool ours;
  };
  const Case cases[] = {
      {"sip:192.0.2.1;lr", true},          {"sips:192.0.2.1;lr", true},
      {"sip:192.0.2.1:5061;lr", true},     {"sip:192.0.2.1:5070;lr", false},
      {"sip:[2001:db8::1]:5070;lr", true}, {"sip:[2001:db8::1];lr", false},
      {"sip:192.0.2.2;lr", false},
  };
  for (const Case& c : cases) {
    MsgPtr msg = Bye({c.route});
    EXPECT_EQ(IsOwnUrl(ours, sip_object(msg.get())->sip_route->r_url), c.ours) << c.route;
  }
  // With only the TLS listener (5061), a port-less sip URI (5060) is not ours (the old check
  // took a port-less URI for 5060 or 5061 alike).
  config.also_ours = {{Transport::kTls, "192.0.2.1", 5061}};
  RouteSet tls_only = *RouteSet::Create(config);
  MsgPtr plain = Bye({"sip:192.0.2.1;lr"});
  EXPECT_FALSE(IsOwnUrl(tls_only, sip_object(plain.get())->sip_route->r_url));
}

TEST(CopyForForwardTest, DecrementsMaxForwardsAndConsumesOurRoutes) {
  struct Case {
    int max_forwards;
    int strip;
    unsigned long forwarded;
    std::string next_route;  // "" = none left
  };
  const Case cases[] = {
      {70, 1, 69, "sip:backend.example.org;lr"}, {-1, 2, 69, ""},
      {200, 0, 69, "sip:192.0.2.1;lr"},          {1, 1, 0, "sip:backend.example.org;lr"},
      {0, 1, 0, "sip:backend.example.org;lr"},
  };
  for (const Case& c : cases) {
    MsgPtr original = Bye({"sip:192.0.2.1;lr", "sip:backend.example.org;lr"}, c.max_forwards);
    MsgPtr copy = CopyForForward(original.get(), c.strip);
    ASSERT_NE(copy, nullptr);
    const sip_t* sip = sip_object(copy.get());
    ASSERT_NE(sip->sip_max_forwards, nullptr);
    EXPECT_EQ(sip->sip_max_forwards->mf_count, c.forwarded) << c.max_forwards;
    if (c.next_route.empty()) {
      EXPECT_EQ(sip->sip_route, nullptr) << c.strip;
      EXPECT_EQ(LooseTarget(sip), "sip:bob@10.0.0.5");
    } else {
      ASSERT_NE(sip->sip_route, nullptr) << c.strip;
      EXPECT_EQ(UrlString(sip->sip_route->r_url), c.next_route);
      EXPECT_EQ(LooseTarget(sip), c.next_route);
    }
    // The original is untouched.
    EXPECT_EQ(UrlString(sip_object(original.get())->sip_route->r_url), "sip:192.0.2.1;lr");
  }
}

TEST(ResponseToRelayTest, RemovesOurViaOnly) {
  const std::string text =
      "SIP/2.0 200 OK\r\n"
      "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ours\r\n"
      "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\r\n"
      "From: <sip:alice@example.org>;tag=a\r\n"
      "To: <sip:bob@example.org>;tag=b\r\n"
      "Call-ID: c1\r\n"
      "CSeq: 2 BYE\r\n"
      "Content-Length: 0\r\n\r\n";
  MsgPtr response(
      msg_make(sip_default_mclass(), 0, text.data(), static_cast<ssize_t>(text.size())));
  ASSERT_NE(response, nullptr);
  MsgPtr relayed = ResponseToRelay(response.get());
  ASSERT_NE(relayed, nullptr);
  const sip_via_t* via = sip_object(relayed.get())->sip_via;
  ASSERT_NE(via, nullptr);
  EXPECT_STREQ(via->v_host, "192.0.2.10");
  EXPECT_EQ(via->v_next, nullptr);
}

TEST(CallInfoOfTest, CallIdCallerAndUnquotedDisplayName) {
  const std::string text =
      "INVITE sip:alice@192.0.2.1;pgw=x SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\r\n"
      "From: \"Bob B\" <sip:bob@example.org>;tag=b\r\n"
      "To: <sip:alice@example.org>\r\n"
      "Call-ID: call-1@example.org\r\n"
      "CSeq: 1 INVITE\r\n"
      "Content-Length: 0\r\n\r\n";
  MsgPtr msg(msg_make(sip_default_mclass(), 0, text.data(), static_cast<ssize_t>(text.size())));
  ASSERT_NE(msg, nullptr);
  CallInfo info = CallInfoOf(sip_object(msg.get()));
  EXPECT_EQ(info.call_id, "call-1@example.org");
  EXPECT_EQ(info.caller_uri, "sip:bob@example.org");
  EXPECT_EQ(info.caller_display_name, "Bob B");
}

}  // namespace
}  // namespace pushgate::proxy::sofia
