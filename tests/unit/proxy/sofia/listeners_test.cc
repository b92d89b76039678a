#include "proxy/sofia/listeners.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::proxy::sofia {
namespace {

using ::testing::ElementsAre;

std::string NoVia(Transport, bool) { return ""; }

TEST(ElectAdvertisedTest, ListenerAddressWhenNothingIsConfigured) {
  std::vector<TransportInfo> listening = {{Transport::kUdp, "192.0.2.1", 5060},
                                          {Transport::kTcp, "192.0.2.1", 5060}};
  EXPECT_EQ(ElectAdvertised(listening, {}, NoVia), listening);
}

TEST(ElectAdvertisedTest, ConfiguredAddressOfTheSameFamilyWins) {
  std::vector<TransportInfo> listening = {{Transport::kUdp, "0.0.0.0", 5060},
                                          {Transport::kUdp, "::", 5060}};
  std::vector<TransportInfo> configured = {{Transport::kUdp, "2001:db8::7", 5070},
                                           {Transport::kUdp, "203.0.113.7", 5070}};
  EXPECT_THAT(ElectAdvertised(listening, configured, NoVia),
              ElementsAre(TransportInfo{Transport::kUdp, "203.0.113.7", 5070},
                          TransportInfo{Transport::kUdp, "2001:db8::7", 5070}));
}

TEST(ElectAdvertisedTest, ConfiguredHostNameServesBothFamilies) {
  std::vector<TransportInfo> listening = {{Transport::kTls, "0.0.0.0", 5061},
                                          {Transport::kTls, "::", 5061}};
  std::vector<TransportInfo> configured = {{Transport::kTls, "sip.example.org", 443}};
  EXPECT_THAT(ElectAdvertised(listening, configured, NoVia),
              ElementsAre(TransportInfo{Transport::kTls, "sip.example.org", 443},
                          TransportInfo{Transport::kTls, "sip.example.org", 443}));
}

TEST(ElectAdvertisedTest, WildcardListenerTakesTheViaHostOfItsTransportAndFamily) {
  std::vector<TransportInfo> listening = {{Transport::kUdp, "0.0.0.0", 5060},
                                          {Transport::kTcp, "::", 5062},
                                          {Transport::kTcp, "0.0.0.0", 5062}};
  auto via = [](Transport t, bool v6) -> std::string {
    if (t == Transport::kUdp && !v6) return "198.51.100.1";
    if (t == Transport::kTcp && v6) return "2001:db8::1";
    return "";  // no Via for TCP over IPv4: the wildcard stays
  };
  EXPECT_THAT(ElectAdvertised(listening, {}, via),
              ElementsAre(TransportInfo{Transport::kUdp, "198.51.100.1", 5060},
                          TransportInfo{Transport::kTcp, "2001:db8::1", 5062},
                          TransportInfo{Transport::kTcp, "0.0.0.0", 5062}));
}

}  // namespace
}  // namespace pushgate::proxy::sofia
