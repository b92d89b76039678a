#include "proxy/core/route_set.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pushgate::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr char kSecret[] = "route-set-test-secret";

Uri U(const std::string& text) {
  auto uri = ParseUri(text);
  EXPECT_TRUE(uri.ok()) << text << ": " << uri.status();
  return uri.ok() ? *uri : Uri{};
}

// UDP (the default) on 192.0.2.1:5060, TCP on 5070, TLS by name with no port (5061).
RouteSet Gateway() {
  RouteSetConfig config;
  config.record_route = "sip:192.0.2.1:5060;transport=udp";
  config.by_transport[Transport::kTcp] = "sip:192.0.2.1:5070;transport=tcp";
  config.by_transport[Transport::kTls] = "sips:gw.example.org";
  config.route_secret = kSecret;
  auto set = RouteSet::Create(config);
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? *std::move(set) : RouteSet();
}

TEST(RecordRouteUriTest, OneUriPerTransport) {
  struct Case {
    TransportInfo address;
    std::string uri;
  };
  const Case cases[] = {
      {{Transport::kUdp, "192.0.2.1", 5060}, "sip:192.0.2.1:5060"},
      {{Transport::kTcp, "192.0.2.1", 5070}, "sip:192.0.2.1:5070;transport=tcp"},
      {{Transport::kTls, "2001:db8::1", 5061}, "sips:[2001:db8::1]:5061;transport=tls"},
  };
  for (const Case& c : cases)
    EXPECT_EQ(AddressUri(c.address, UriForm::kRecordRoute), c.uri) << c.uri;
}

TEST(RouteSetTest, EmptyConfigIsNoRouteSet) {
  auto set = RouteSet::Create(RouteSetConfig{});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_TRUE(set->empty());
  EXPECT_FALSE(set->record_routes());
  EXPECT_FALSE(set->IsOwn(U("sip:192.0.2.1")));
  EXPECT_THAT(set->RecordRoutes(Transport::kUdp, Transport::kTcp, "f1", std::nullopt), IsEmpty());
}

TEST(RouteSetTest, BadUriIsAnError) {
  RouteSetConfig config;
  config.record_route = "tel:+1555";
  EXPECT_FALSE(RouteSet::Create(config).ok());
  config.record_route = "sip:192.0.2.1";
  config.by_transport[Transport::kTcp] = "sip:";
  auto set = RouteSet::Create(config);
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(std::string(set.status().message()), StartsWith("record-route for tcp"));
}

TEST(RouteSetTest, ListenersFillMissingTransports) {
  RouteSetConfig config;
  config.record_route = "sip:gw.example.org:5060;transport=udp";
  config.listeners = {{Transport::kUdp, "0.0.0.0", 5999},
                      {Transport::kTcp, "0.0.0.0", 5062},
                      {Transport::kTls, "0.0.0.0", 5063}};
  auto set = RouteSet::Create(config);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT(set->RecordRoutes(Transport::kUdp, Transport::kUdp, "", std::nullopt),
              ElementsAre("sip:gw.example.org:5060;transport=udp"));
  EXPECT_THAT(set->RecordRoutes(Transport::kUdp, Transport::kTcp, "", std::nullopt),
              ElementsAre("sip:gw.example.org:5062;transport=tcp",
                          "sip:gw.example.org:5060;transport=udp"));
  EXPECT_THAT(set->RecordRoutes(Transport::kTls, Transport::kUdp, "", std::nullopt),
              ElementsAre("sip:gw.example.org:5060;transport=udp",
                          "sips:gw.example.org:5063;transport=tls"));
  EXPECT_FALSE(set->IsOwn(U("sip:gw.example.org:5999")));  // the default transport's is given
  EXPECT_TRUE(set->IsOwn(U("sips:gw.example.org:5063")));
}

TEST(RouteSetTest, IsOwnUsesTheSchemesDefaultPort) {
  RouteSet set = Gateway();
  struct Case {
    std::string uri;
    bool own;
  };
  const Case cases[] = {
      {"sip:192.0.2.1", true},  // 5060
      {"sip:192.0.2.1:5060;lr", true},
      {"sip:192.0.2.1:5070;transport=tcp", true},
      {"sip:192.0.2.1:5070", true},  // host and port decide, not the transport
      {"sip:192.0.2.1:5071", false},
      {"sip:192.0.2.2", false},
      {"sips:gw.example.org", true},       // 5061
      {"sips:GW.Example.ORG:5061", true},  // host case-insensitive
      {"sip:gw.example.org:5061", true},
      {"sip:gw.example.org", false},  // 5060: not our TLS listener
      {"sips:192.0.2.1", false},      // 5061
      {"sip:alice@192.0.2.1:5060", true},
  };
  for (const Case& c : cases) EXPECT_EQ(set.IsOwn(U(c.uri)), c.own) << c.uri;
  EXPECT_TRUE(set.IsOwnAddress(false, "192.0.2.1", std::nullopt));
  EXPECT_FALSE(set.IsOwnAddress(true, "192.0.2.1", std::nullopt));
}

TEST(RouteSetTest, AlsoOursIsUsButNeverARecordRoute) {
  RouteSetConfig config;
  config.also_ours = {{Transport::kUdp, "10.0.0.2", 5060},
                      {Transport::kTls, "gw.example.org", 5061}};
  auto set = RouteSet::Create(config);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_FALSE(set->empty());
  EXPECT_FALSE(set->record_routes());
  EXPECT_TRUE(set->IsOwn(U("sip:10.0.0.2;lr")));
  EXPECT_TRUE(set->IsOwn(U("sips:gw.example.org")));
  EXPECT_FALSE(set->IsOwn(U("sip:gw.example.org")));  // 5060
  EXPECT_THAT(set->RecordRoutes(Transport::kUdp, Transport::kUdp, "f1", std::nullopt), IsEmpty());

  config.record_route = "sip:192.0.2.1:5060";
  set = RouteSet::Create(config);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_TRUE(set->IsOwn(U("sip:10.0.0.2")));
  EXPECT_TRUE(set->IsOwn(U("sip:192.0.2.1")));
  EXPECT_THAT(set->RecordRoutes(Transport::kUdp, Transport::kTls, "", std::nullopt),
              ElementsAre("sip:192.0.2.1:5060"));
}

TEST(RouteSetTest, Ipv6OwnUris) {
  RouteSetConfig config;
  config.record_route = "sip:[2001:db8::1]:5060";
  auto set = RouteSet::Create(config);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_TRUE(set->IsOwn(U("sip:[2001:DB8::1]")));
  EXPECT_TRUE(set->IsOwnAddress(false, "[2001:db8::1]", 5060));
  EXPECT_TRUE(set->IsOwnAddress(false, "2001:db8::1", 5060));
  EXPECT_FALSE(set->IsOwnAddress(false, "[2001:db8::2]", 5060));
}

// The old code compared the binding with the default URI only and defaulted its sips: port to
// 5060: a contact naming our TLS port by sip: and a port was called (a call to ourselves), and
// one naming another port of our host was dropped. The rows marked "was wrong" fail on it.
TEST(RouteSetTest, PointsAtUsWithTheRightDefaultPorts) {
  RouteSetConfig config;
  config.record_route = "sips:gw.example.org";
  auto tls_only = RouteSet::Create(config);
  ASSERT_TRUE(tls_only.ok()) << tls_only.status();
  RouteSet gateway = Gateway();
  struct Case {
    const RouteSet* set;
    std::string contact;
    TransportInfo received;
    std::string flow;
    bool us;
  };
  const TransportInfo kNowhere{};
  const TransportInfo kPhoneNat{Transport::kUdp, "198.51.100.7", 40000};
  const Case cases[] = {
      {&*tls_only, "sip:alice@gw.example.org:5061", kNowhere, "", true},  // was wrong
      {&*tls_only, "sip:alice@gw.example.org", kNowhere, "", false},      // was wrong
      {&*tls_only, "sips:alice@gw.example.org", kNowhere, "", true},
      {&gateway, "sip:alice@192.0.2.1", kNowhere, "", true},
      {&gateway, "sip:alice@192.0.2.1:5070;transport=tcp", kNowhere, "", true},  // was wrong
      {&gateway, "sip:alice@10.0.0.5:5060", kPhoneNat, "", false},
      // Without a kept connection the address the REGISTER came from decides.
      {&gateway, "sip:alice@10.0.0.5:5060", {Transport::kUdp, "192.0.2.1", 5060}, "", true},
      {&gateway, "sip:alice@192.0.2.1", kPhoneNat, "", false},
      // With one, the contact does.
      {&gateway, "sip:alice@192.0.2.1", kPhoneNat, "flow-1", true},
      {&gateway, "sip:alice@10.0.0.5", {Transport::kTcp, "192.0.2.1", 5070}, "flow-1", false},
  };
  for (const Case& c : cases) {
    Binding b;
    b.contact = U(c.contact);
    b.received = c.received;
    b.flow_token = c.flow;
    EXPECT_EQ(c.set->PointsAtUs(b), c.us) << c.contact << " received " << DebugString(c.received);
  }
  EXPECT_FALSE(RouteSet().PointsAtUs(Binding{}));
}

TEST(RouteSetTest, OwnRoutesCountsAnRfc5658PairAsTwo) {
  RouteSet set = Gateway();
  struct Case {
    std::vector<std::string> routes;
    int own;
  };
  const Case cases[] = {
      {{}, 0},
      {{"sip:backend.example.org;lr"}, 0},
      {{"sip:backend.example.org;lr", "sip:192.0.2.1;lr"}, 0},  // ours not on top
      {{"sip:192.0.2.1:5060;transport=udp;lr"}, 1},
      {{"sip:192.0.2.1:5060;transport=udp;lr", "sip:backend.example.org;lr"}, 1},
      {{"sip:192.0.2.1:5070;transport=tcp;lr", "sip:192.0.2.1:5060;transport=udp;lr"}, 2},
      {{"sips:gw.example.org;lr", "sip:192.0.2.1;lr"}, 2},
      // The same entry twice is a spiral through us: one hop at a time.
      {{"sip:192.0.2.1:5060;lr", "sip:192.0.2.1:5060;lr"}, 1},
      {{"sip:192.0.2.1;lr", "sip:192.0.2.1:5060;lr"}, 1},  // 5060 either way
  };
  for (const Case& c : cases) {
    std::vector<Uri> routes;
    for (const std::string& r : c.routes) routes.push_back(U(r));
    EXPECT_EQ(set.OwnRoutes(routes), c.own) << ::testing::PrintToString(c.routes);
  }
  EXPECT_EQ(RouteSet().OwnRoutes({U("sip:192.0.2.1;lr")}), 0);
}

TEST(RouteSetTest, RecordRoutesNameThePhone) {
  RouteSet set = Gateway();
  const std::string udp = "sip:192.0.2.1:5060;transport=udp";
  const std::string tcp = "sip:192.0.2.1:5070;transport=tcp";
  struct Case {
    std::optional<Transport> in, out;
    std::string flow;
    std::vector<std::string> routes;
  };
  const Case cases[] = {
      {Transport::kUdp, Transport::kUdp, "", {udp}},
      {std::nullopt, std::nullopt, "", {udp}},  // unknown: the default
      {Transport::kUdp, Transport::kTcp, "f1", {tcp + ";pgf=f1", udp}},
      {Transport::kTcp, Transport::kUdp, "", {udp, tcp}},
      {Transport::kTls, Transport::kTls, "f2", {"sips:gw.example.org;pgf=f2"}},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(set.RecordRoutes(c.in, c.out, c.flow, std::nullopt), ElementsAreArray(c.routes))
        << c.flow;
  }
}

TEST(RouteSetTest, SignedPhoneAddressComesBackFromOurRoute) {
  RouteSet set = Gateway();
  const TransportInfo phone{Transport::kUdp, "198.51.100.7", 40000};
  std::vector<std::string> rr = set.RecordRoutes(Transport::kUdp, Transport::kUdp, "", phone);
  ASSERT_EQ(rr.size(), 1u);
  ASSERT_THAT(rr[0], StartsWith("sip:192.0.2.1:5060;transport=udp;pga="));
  std::vector<Uri> routes = {U(rr[0] + ";lr")};
  ASSERT_EQ(set.OwnRoutes(routes), 1);
  auto named = set.NamedPhoneAddress(routes);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(*named, phone);
  EXPECT_EQ(set.NamedFlow(routes), std::nullopt);

  // A flow token wins over the address.
  rr = set.RecordRoutes(Transport::kUdp, Transport::kUdp, "f1", phone);
  EXPECT_THAT(rr, ElementsAre("sip:192.0.2.1:5060;transport=udp;pgf=f1"));
  EXPECT_EQ(set.NamedFlow({U(rr[0])}), "f1");

  // Forged or altered: an error, never an address.
  Uri forged = routes[0];
  std::string value = *Param(forged, kPhoneParam);
  value[value.size() / 2] = value[value.size() / 2] == 'A' ? 'B' : 'A';
  SetParam(forged, kPhoneParam, value);
  EXPECT_FALSE(set.NamedPhoneAddress({forged}).ok());

  // No route secret: no address carried, none read.
  RouteSetConfig config;
  config.record_route = "sip:192.0.2.1:5060;transport=udp";
  auto plain = RouteSet::Create(config);
  ASSERT_TRUE(plain.ok());
  EXPECT_THAT(plain->RecordRoutes(Transport::kUdp, Transport::kUdp, "", phone),
              ElementsAre("sip:192.0.2.1:5060;transport=udp"));
  auto none = plain->NamedPhoneAddress(routes);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, std::nullopt);
}

TEST(IsTrustedBackendTest, EntriesByAddressOrAddressAndPort) {
  const std::vector<std::string> trusted = {"192.0.2.10", "[2001:db8::10]", "192.0.2.20:5080"};
  struct Case {
    TransportInfo source;
    bool trusted;
  };
  const Case cases[] = {
      {{Transport::kUdp, "192.0.2.10", 5060}, true},
      {{Transport::kTcp, "192.0.2.10", 40001}, true},
      {{Transport::kUdp, "2001:db8::10", 5060}, true},
      {{Transport::kUdp, "192.0.2.20", 5080}, true},
      {{Transport::kUdp, "192.0.2.20", 5060}, false},
      {{Transport::kUdp, "192.0.2.11", 5060}, false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsTrustedBackend(trusted, c.source), c.trusted) << DebugString(c.source);
  }
}

TEST(IsTrustedBackendTest, EntriesMatchWholeAddressesOnly) {
  const std::vector<std::string> trusted = {"2001:db8::20", "[2001:db8::30]:5070", "192.0.2.30:50"};
  struct Case {
    TransportInfo source;
    bool trusted;
  };
  const Case cases[] = {
      {{Transport::kUdp, "2001:db8::20", 5060}, true},   // unbracketed IPv6 entry
      {{Transport::kUdp, "2001:db8::30", 5070}, true},   // bracketed with its port
      {{Transport::kUdp, "2001:db8::30", 5060}, false},  // another port
      {{Transport::kUdp, "2001:db8::3", 5070}, false},   // a prefix of the entry's host
      {{Transport::kUdp, "192.0.2.3", 5060}, false},     // a prefix of the entry's host
      {{Transport::kUdp, "192.0.2.30", 5080}, false},    // the entry's port is a prefix
      {{Transport::kUdp, "192.0.2.30", 50}, true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsTrustedBackend(trusted, c.source), c.trusted) << DebugString(c.source);
  }
}

TEST(TrustedBackendsTest, TheBackendsOwnIpLiteralIsTrusted) {
  struct Case {
    std::optional<std::string> backend;
    std::vector<std::string> trusted;
  };
  const Case cases[] = {
      {std::nullopt, {"192.0.2.99"}},
      {"sip:backend.example.org", {"192.0.2.99"}},  // a name: its address is unknown
      {"sip:192.0.2.10;transport=udp", {"192.0.2.99", "192.0.2.10:5060"}},
      {"sip:192.0.2.10:5080", {"192.0.2.99", "192.0.2.10:5080"}},  // UDP by default
      {"sip:[2001:db8::10]:5070;transport=udp", {"192.0.2.99", "[2001:db8::10]:5070"}},
      {"sip:192.0.2.10:5080;transport=tcp", {"192.0.2.99", "192.0.2.10"}},  // any port
      {"sips:[2001:db8::10]", {"192.0.2.99", "2001:db8::10"}},
  };
  for (const Case& c : cases) {
    std::optional<Uri> backend;
    if (c.backend) backend = U(*c.backend);
    EXPECT_EQ(TrustedBackends(backend, {"192.0.2.99"}), c.trusted) << c.backend.value_or("none");
  }
}

TEST(DecideInDialogTest, OnlyFromTheBackendToThePhoneOrToTheBackend) {
  InDialogPolicy with_backend;
  with_backend.backend = U("sip:backend.example.org;transport=tcp");
  with_backend.trusted_backends = {"192.0.2.10"};
  InDialogPolicy domains_only;
  domains_only.domains = DomainPolicy({"example.org"});
  InDialogPolicy all_domains;
  all_domains.domains = DomainPolicy::AllowAll();
  const TransportInfo kBackendIp{Transport::kUdp, "192.0.2.10", 5060};
  const TransportInfo kStranger{Transport::kUdp, "203.0.113.9", 5060};
  using V = InDialogVerdict;
  struct Case {
    const char* name;
    const InDialogPolicy* policy;
    std::optional<TransportInfo> source;
    bool names_phone;
    std::optional<std::string> next_hop;
    V verdict;
  };
  const Case cases[] = {
      {"from the backend", &with_backend, kBackendIp, false, "sip:203.0.113.9", V::kFromBackend},
      {"to the phone", &with_backend, kStranger, true, "sip:203.0.113.9", V::kPhone},
      {"to the backend", &with_backend, kStranger, false, "sip:BACKEND.example.org:5060",
       V::kToBackend},
      {"backend port differs", &with_backend, kStranger, false, "sip:backend.example.org:5070",
       V::kDenied},
      {"to a trusted address", &with_backend, kStranger, false, "sip:192.0.2.10;lr",
       V::kToTrustedBackend},
      {"to a stranger", &with_backend, kStranger, false, "sip:203.0.113.9", V::kDenied},
      {"unknown source", &with_backend, std::nullopt, false, "sip:203.0.113.9", V::kDenied},
      {"unparseable next hop", &with_backend, kStranger, false, std::nullopt, V::kDenied},
      {"allowed domain", &domains_only, kStranger, false, "sip:bob@example.org",
       V::kToAllowedDomain},
      {"other domain", &domains_only, kStranger, false, "sip:bob@example.net", V::kDenied},
      {"star is not an allowed domain", &all_domains, kStranger, false, "sip:bob@example.org",
       V::kDenied},
  };
  for (const Case& c : cases) {
    InDialogFacts facts;
    facts.source = c.source;
    facts.names_phone = c.names_phone;
    if (c.next_hop) facts.next_hop = U(*c.next_hop);
    EXPECT_EQ(DecideInDialog(facts, *c.policy), c.verdict) << c.name;
  }
}

}  // namespace
}  // namespace pushgate::proxy
