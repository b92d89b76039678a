// ProxyConfig -> SipProxyOptions: listener syntax, cross-key rules, the masquerade secret.
#include "proxy/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/config.h"

namespace pushgate::proxy {
namespace {

using ::testing::HasSubstr;

TEST(ProxyConfig, ParsesListenersIpv4Ipv6AndPortZero) {
  auto a = ParseTransportAddress("udp:0.0.0.0:5060");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, (TransportInfo{Transport::kUdp, "0.0.0.0", 5060}));
  auto b = ParseTransportAddress("TLS:[2001:db8::1]:5061");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*b, (TransportInfo{Transport::kTls, "2001:db8::1", 5061}));
  auto c = ParseTransportAddress("tcp:[::]:0");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->port, 0);
  EXPECT_FALSE(ParseTransportAddress("udp:1.2.3.4").ok());
  EXPECT_FALSE(ParseTransportAddress("sctp:1.2.3.4:5060").ok());
  EXPECT_FALSE(ParseTransportAddress("udp:2001:db8::1:5060").ok());  // IPv6 needs brackets
  EXPECT_FALSE(ParseTransportAddress("udp:1.2.3.4:70000").ok());
}

TEST(ProxyConfig, BuildsOptionsFromToml) {
  ProxyConfig cfg;
  config::Schema schema = MakeProxySchema(&cfg);
  absl::Status st = config::LoadFromString(schema, R"(
[sip]
listen = ["udp:127.0.0.1:5070", "tcp:[::1]:5070"]
advertise = ["udp:203.0.113.7:5060"]
backend = "sip:10.0.0.2:5060;transport=tcp"
trusted_backends = ["10.0.0.3"]
domains = ["example.org"]
masquerade_secret = "s3cret"
t1 = "100ms"
transaction_timeout = "5s"
[registrar]
min_expires = "30s"
max_contacts_per_aor = 3
)",
                                           "test.toml", config::NoEnv());
  ASSERT_TRUE(st.ok()) << st;
  SecretSource source = SecretSource::kGenerated;
  auto o = BuildSipProxyOptions(cfg, &source);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(source, SecretSource::kConfigured);
  ASSERT_EQ(o->listen.size(), 2u);
  EXPECT_EQ(o->listen[1], (TransportInfo{Transport::kTcp, "::1", 5070}));
  ASSERT_EQ(o->advertise.size(), 1u);
  EXPECT_EQ(o->advertise[0].host, "203.0.113.7");
  EXPECT_EQ(o->backend_uri, "sip:10.0.0.2:5060;transport=tcp");
  EXPECT_EQ(o->masquerade_secret, "s3cret");
  EXPECT_EQ(o->t1, absl::Milliseconds(100));
  EXPECT_EQ(o->transaction_timeout, absl::Seconds(5));
  EXPECT_EQ(o->registrar.min_expires, absl::Seconds(30));
  EXPECT_EQ(o->registrar.max_contacts_per_aor, 3);
}

TEST(ProxyConfig, SecretFromFileOrGenerated) {
  std::string path = absl::StrCat(::testing::TempDir(), "/secret_", getpid());
  std::ofstream(path) << "  from-file \n";
  ProxyConfig cfg;
  cfg.masquerade_secret = "ignored";
  cfg.masquerade_secret_file = path;
  SecretSource source;
  auto o = BuildSipProxyOptions(cfg, &source);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->masquerade_secret, "from-file");
  EXPECT_EQ(source, SecretSource::kFile);

  ProxyConfig none;
  auto g1 = BuildSipProxyOptions(none, &source);
  auto g2 = BuildSipProxyOptions(none, &source);
  ASSERT_TRUE(g1.ok() && g2.ok());
  EXPECT_EQ(source, SecretSource::kGenerated);
  EXPECT_GE(g1->masquerade_secret.size(), 32u);
  EXPECT_NE(g1->masquerade_secret, g2->masquerade_secret);

  ProxyConfig missing;
  missing.masquerade_secret_file = path + ".missing";
  auto m = BuildSipProxyOptions(missing, &source);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("sip.masquerade_secret_file"));
}

TEST(ProxyConfig, CrossKeyErrorsNameTheKey) {
  ProxyConfig tls;
  tls.listen = {"tls:0.0.0.0:5061"};
  auto a = BuildSipProxyOptions(tls, nullptr);
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("tls_certificate_dir"));

  ProxyConfig backend;
  backend.backend = "tel:+123";
  auto b = BuildSipProxyOptions(backend, nullptr);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("sip.backend"));

  ProxyConfig expires;
  expires.default_expires = absl::Seconds(10);
  auto c = BuildSipProxyOptions(expires, nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("registrar.default_expires"));

  ProxyConfig admin;
  admin.admin_listen = "nowhere";
  auto d = BuildSipProxyOptions(admin, nullptr);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("admin.listen"));

  ProxyConfig team;
  team.push_legacy_apns_team = "abcd12345";
  auto e = BuildSipProxyOptions(team, nullptr);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("push.legacy_apns_team"));
  team.push_legacy_apns_team = "ABCD123456";
  EXPECT_TRUE(BuildSipProxyOptions(team, nullptr).ok());

  ProxyConfig timer_c;
  timer_c.fork_call_timeout = absl::Seconds(200);
  auto f = BuildSipProxyOptions(timer_c, nullptr);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("limits.timer_c"));
  timer_c.timer_c = absl::Seconds(201);
  auto g = BuildSipProxyOptions(timer_c, nullptr);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->timer_c, absl::Seconds(201));
}

TEST(ProxyConfig, TimerCDefaultsToThreeMinutesAbove) {
  ProxyConfig cfg;
  config::Schema schema = MakeProxySchema(&cfg);
  ASSERT_TRUE(
      config::LoadFromString(schema, "[limits]\ntimer_c = \"200s\"\n", "t.toml", config::NoEnv())
          .ok());
  auto o = BuildSipProxyOptions(cfg, nullptr);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->timer_c, absl::Seconds(200));
  EXPECT_EQ(ProxyConfig().timer_c, absl::Seconds(180));
}

TEST(ProxyConfig, TransportLimits) {
  ProxyConfig cfg;
  config::Schema schema = MakeProxySchema(&cfg);
  ASSERT_TRUE(config::LoadFromString(schema, R"(
[limits]
max_message_size = 100000
connection_idle_timeout = "30s"
message_timeout = "5s"
)",
                                     "t.toml", config::NoEnv())
                  .ok());
  auto o = BuildSipProxyOptions(cfg, nullptr);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->max_message_size, 100000u);
  EXPECT_EQ(o->connection_idle_timeout, absl::Seconds(30));
  EXPECT_EQ(o->message_timeout, absl::Seconds(5));
  // Below a UDP datagram's size: refused (sofia would abort on a larger datagram).
  ProxyConfig small;
  config::Schema small_schema = MakeProxySchema(&small);
  EXPECT_FALSE(config::LoadFromString(small_schema, "[limits]\nmax_message_size = 4096\n", "t.toml",
                                      config::NoEnv())
                   .ok());
  EXPECT_EQ(ProxyConfig().max_message_size, 64 * 1024);
}

TEST(ProxyConfig, WireLimits) {
  ProxyConfig defaults;
  config::Schema default_schema = MakeProxySchema(&defaults);
  ASSERT_TRUE(config::LoadFromString(default_schema, "", "t.toml", config::NoEnv()).ok());
  auto d = BuildSipProxyOptions(defaults, nullptr);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->max_header_lines, 256u);
  EXPECT_EQ(d->max_connections, 2048u);
  EXPECT_EQ(d->max_connections_per_source, 64u);

  ProxyConfig cfg;
  config::Schema schema = MakeProxySchema(&cfg);
  ASSERT_TRUE(config::LoadFromString(schema, R"(
[limits]
max_header_lines = 100
max_connections = 10
max_connections_per_source = 0
)",
                                     "t.toml", config::NoEnv())
                  .ok());
  auto o = BuildSipProxyOptions(cfg, nullptr);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->max_header_lines, 100u);
  EXPECT_EQ(o->max_connections, 10u);
  EXPECT_EQ(o->max_connections_per_source, 0u);

  // Out of range, and a per-source limit above the total.
  for (const char* bad : {"[limits]\nmax_header_lines = 5000\n", "[limits]\nmax_header_lines = 0\n",
                          "[limits]\nmax_connections = 0\n"}) {
    ProxyConfig c;
    config::Schema s = MakeProxySchema(&c);
    EXPECT_FALSE(config::LoadFromString(s, bad, "t.toml", config::NoEnv()).ok()) << bad;
  }
  ProxyConfig over;
  config::Schema over_schema = MakeProxySchema(&over);
  ASSERT_TRUE(config::LoadFromString(
                  over_schema, "[limits]\nmax_connections = 10\nmax_connections_per_source = 11\n",
                  "t.toml", config::NoEnv())
                  .ok());
  auto refused = BuildSipProxyOptions(over, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("limits.max_connections_per_source"), std::string::npos)
      << refused.status();
}

}  // namespace
}  // namespace pushgate::proxy
