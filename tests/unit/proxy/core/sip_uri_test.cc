#include "proxy/core/sip_uri.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

TEST(ParseUriTest, FullForm) {
  auto uri = ParseUri("SIP:alice:secret@Example.ORG:5070;transport=TCP;lr;x=1?Subject=hi");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->scheme, "sip");
  EXPECT_EQ(uri->user, "alice");
  EXPECT_EQ(uri->password, "secret");
  EXPECT_EQ(uri->host, "Example.ORG");
  EXPECT_EQ(uri->port, 5070);
  EXPECT_THAT(uri->params,
              ::testing::ElementsAre(Pair("transport", "TCP"), Pair("lr", ""), Pair("x", "1")));
  EXPECT_EQ(uri->headers, "Subject=hi");
}

TEST(ParseUriTest, HostOnlyAndSips) {
  auto uri = ParseUri("  sips:example.org  ");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->scheme, "sips");
  EXPECT_EQ(uri->user, "");
  EXPECT_EQ(uri->host, "example.org");
  EXPECT_FALSE(uri->port.has_value());
}

TEST(ParseUriTest, Ipv6WithAndWithoutPort) {
  auto uri = ParseUri("sip:bob@[2001:db8::1]:5061;transport=tls");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->host, "2001:db8::1");
  EXPECT_EQ(uri->port, 5061);
  EXPECT_EQ(FormatUri(*uri), "sip:bob@[2001:db8::1]:5061;transport=tls");
  auto bare = ParseUri("sip:[::1]");
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->host, "::1");
  EXPECT_EQ(FormatUri(*bare), "sip:[::1]");
}

TEST(ParseUriTest, UserWithEscapesAndSpecialCharsIsKeptRaw) {
  auto uri = ParseUri("sip:+33%20612&x=y$,/@example.org");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->user, "+33%20612&x=y$,/");
  EXPECT_EQ(FormatUri(*uri), "sip:+33%20612&x=y$,/@example.org");
  EXPECT_EQ(PercentDecode(uri->user), "+33 612&x=y$,/");
}

TEST(ParseUriTest, RoundTrip) {
  for (const char* text :
       {"sip:a@b", "sip:a@b:1", "sips:a:p@b.c;x;y=z?h=v&i=w", "sip:[fe80::1%25eth0]:5060",
        "sip:user@192.0.2.1:5060;transport=udp;pn-provider=apns;pn-prid=ab12"}) {
    auto uri = ParseUri(text);
    ASSERT_TRUE(uri.ok()) << text << ": " << uri.status();
    if (std::string(text).find('%') == std::string::npos) {
      EXPECT_EQ(FormatUri(*uri), text);
    }
  }
}

TEST(ParseUriTest, ErrorsSayWhatIsWrong) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "empty"},
           {"alice@example.org", "missing scheme"},
           {"tel:+331234", "unsupported scheme \"tel\""},
           {"sip:", "empty host"},
           {"sip:@example.org", "empty user part"},
           {"sip:a@", "empty host"},
           {"sip:a@b:0", "invalid port \"0\""},
           {"sip:a@b:70000", "invalid port \"70000\""},
           {"sip:a@b:5x", "invalid port \"5x\""},
           {"sip:a@b:", "invalid port \"\""},
           {"sip:a@[2001:db8::1", "unterminated IPv6"},
           {"sip:a@[zz::1]", "invalid IPv6 address"},
           {"sip:a@[2001:db8::1]x", "garbage after IPv6"},
           {"sip:a@exa mple.org", "whitespace"},
           {"sip:a@b;;x", "empty parameter name"},
           {"sip:a@b;x=", "empty value for parameter \"x\""},
           {"sip:a@ex!ample", "invalid host"},
           {"sip:a@b<", "invalid character '<'"},
       }) {
    auto uri = ParseUri(c.text);
    ASSERT_FALSE(uri.ok()) << c.text;
    EXPECT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(uri.status().message()), HasSubstr(c.message)) << c.text;
  }
}

TEST(UriParamTest, CaseInsensitiveGetSetRemove) {
  Uri uri = *ParseUri("sip:a@b;Transport=TCP;lr;PN-Prid=x;pn-prid=y");
  EXPECT_EQ(Param(uri, "transport"), "TCP");
  EXPECT_EQ(Param(uri, "LR"), "");
  EXPECT_EQ(Param(uri, "maddr"), std::nullopt);
  EXPECT_TRUE(HasParam(uri, "lr"));
  EXPECT_EQ(Param(uri, "pn-prid"), "x");
  EXPECT_EQ(RemoveParam(uri, "pn-PRID"), 2);
  SetParam(uri, "TRANSPORT", "udp");
  SetParam(uri, "new", "1");
  EXPECT_EQ(FormatUri(uri), "sip:a@b;Transport=udp;lr;new=1");
}

TEST(UriTransportTest, FromParamOrScheme) {
  EXPECT_EQ(*UriTransport(*ParseUri("sip:a@b")), Transport::kUdp);
  EXPECT_EQ(*UriTransport(*ParseUri("sips:a@b")), Transport::kTls);
  EXPECT_EQ(*UriTransport(*ParseUri("sip:a@b;transport=TCP")), Transport::kTcp);
  EXPECT_EQ(*UriTransport(*ParseUri("sip:a@b;transport=tls")), Transport::kTls);
  EXPECT_EQ(*UriTransport(*ParseUri("sips:a@b;transport=tcp")), Transport::kTls);
  EXPECT_FALSE(UriTransport(*ParseUri("sips:a@b;transport=udp")).ok());
  auto ws = UriTransport(*ParseUri("sip:a@b;transport=ws"));
  ASSERT_FALSE(ws.ok());
  EXPECT_THAT(std::string(ws.status().message()), HasSubstr("\"ws\""));
}

TEST(AorKeyTest, NormalizesHostSchemeAndDropsTheRest) {
  EXPECT_EQ(AorKey(*ParseUri("sips:Alice@Example.ORG:5061;transport=tls?x=y")),
            "sip:Alice@example.org");
  EXPECT_EQ(AorKey(*ParseUri("sip:bob@[2001:DB8::1]")), "sip:bob@[2001:db8::1]");
  EXPECT_EQ(AorKey(*ParseUri("sip:example.org")), "sip:example.org");
}

TEST(UriEquivalentTest, Rfc3261Rules) {
  auto eq = [](const char* a, const char* b) { return UriEquivalent(*ParseUri(a), *ParseUri(b)); };
  EXPECT_TRUE(eq("sip:alice@EXAMPLE.org", "sip:alice@example.org"));
  EXPECT_FALSE(eq("sip:Alice@example.org", "sip:alice@example.org"));
  EXPECT_FALSE(eq("sip:a@b", "sip:a@b:5060"));
  EXPECT_FALSE(eq("sip:a@b", "sips:a@b"));
  EXPECT_TRUE(eq("sip:a@b;foo=1", "sip:a@b"));
  EXPECT_FALSE(eq("sip:a@b;foo=1", "sip:a@b;foo=2"));
  EXPECT_FALSE(eq("sip:a@b;transport=tcp", "sip:a@b"));
  EXPECT_TRUE(eq("sip:a@b;transport=TCP", "sip:a@b;transport=tcp"));
}

TEST(TransportTest, NamesAndParsing) {
  EXPECT_EQ(TransportName(Transport::kTls), "tls");
  EXPECT_EQ(*ParseTransport("UDP"), Transport::kUdp);
  EXPECT_FALSE(ParseTransport("sctp").ok());
  EXPECT_EQ(DebugString(TransportInfo{Transport::kTcp, "2001:db8::2", 5060}),
            "tcp:[2001:db8::2]:5060");
}

}  // namespace
}  // namespace pushgate::proxy
