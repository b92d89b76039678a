// pushgate-emulator configuration: TOML -> EmulatorConfig -> EmulatorOptions, and the faults
// JSON of the control API. No sockets.
#include "pusher/emulator/emulator_config.h"

#include <cstdio>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::pusher::emulator {
namespace {

using ::testing::HasSubstr;

TEST(EmulatorConfigTest, ParseHostPort) {
  auto v4 = ParseHostPort("127.0.0.1:8443");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->first, "127.0.0.1");
  EXPECT_EQ(v4->second, 8443);
  auto v6 = ParseHostPort("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(v6->second, 0);
  EXPECT_FALSE(ParseHostPort("127.0.0.1").ok());
  EXPECT_FALSE(ParseHostPort("127.0.0.1:70000").ok());
  EXPECT_FALSE(ParseHostPort("[::1]8443").ok());
}

TEST(EmulatorConfigTest, TomlFileBecomesOptions) {
  char tmpl[] = "/tmp/emulator-config-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string pem = dir + "/key.pem";
  std::ofstream(pem) << "-----BEGIN PUBLIC KEY-----\n";
  EmulatorConfig cfg;
  config::Schema schema = EmulatorSchema(&cfg);
  const std::string toml = R"(
[listen]
h2 = "[::1]:9443"
control = "off"
threads = 2
[apns]
keys = ["TEAM123456:KEY1234567:)" +
                           pem + R"("]
topics = ["TEAM123456:com.example.phone", "TEAM123456:com.example.other"]
cert_topics = ["Apple Push Services: com.x=com.x,com.x.voip"]
[fcm]
accounts = ["sa@p.iam.gserviceaccount.com:)" +
                           pem + R"(:my-project"]
token_expires_in_s = 120
[faults]
fail_next = 3
fail_status = 429
retry_after_s = 9
goaway_after_streams = 10
)";
  ASSERT_TRUE(config::LoadFromString(schema, toml, "emu.toml", config::NoEnv()).ok());
  auto o = OptionsFromConfig(cfg);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->h2_host, "::1");
  EXPECT_EQ(o->h2_port, 9443);
  EXPECT_EQ(o->control_port, -1);
  EXPECT_EQ(o->threads, 2);
  ASSERT_EQ(o->apns_keys.size(), 1u);
  EXPECT_EQ(o->apns_keys[0].team_id, "TEAM123456");
  EXPECT_EQ(o->apns_keys[0].key_id, "KEY1234567");
  EXPECT_THAT(o->apns_keys[0].public_key_pem, HasSubstr("BEGIN PUBLIC KEY"));
  EXPECT_THAT(o->apns_topics["TEAM123456"],
              ::testing::ElementsAre("com.example.phone", "com.example.other"));
  EXPECT_THAT(o->cert_topics["Apple Push Services: com.x"],
              ::testing::ElementsAre("com.x", "com.x.voip"));
  ASSERT_EQ(o->fcm_accounts.size(), 1u);
  EXPECT_EQ(o->fcm_accounts[0].client_email, "sa@p.iam.gserviceaccount.com");
  EXPECT_EQ(o->fcm_accounts[0].project_id, "my-project");
  EXPECT_EQ(o->token_expires_in_s, 120);
  EXPECT_EQ(o->faults.fail_next, 3);
  EXPECT_EQ(o->faults.fail_status, 429);
  EXPECT_EQ(o->faults.retry_after_s, 9);
  EXPECT_EQ(o->faults.goaway_after_streams, 10);
  std::remove(pem.c_str());
  std::remove(dir.c_str());
}

TEST(EmulatorConfigTest, BadSpecsAreNamed) {
  struct Case {
    std::vector<std::string> EmulatorConfig::*field;
    std::string value;
    const char* message;
  };
  const std::vector<Case> cases = {
      {&EmulatorConfig::keys, "TEAM:only-two", "apns.keys"},
      {&EmulatorConfig::keys, "TEAM:KEY:/no/such/file.pem", "cannot read /no/such/file.pem"},
      {&EmulatorConfig::topics, "no-colon", "apns.topics"},
      {&EmulatorConfig::cert_topics, "no-equals", "apns.cert_topics"},
      {&EmulatorConfig::accounts, "email-only", "fcm.accounts"},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.value);
    EmulatorConfig cfg;
    (cfg.*tc.field).push_back(tc.value);
    auto o = OptionsFromConfig(cfg);
    ASSERT_FALSE(o.ok());
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(tc.message));
  }
  EmulatorConfig cfg;
  cfg.cert = "/some/cert.pem";  // without a key
  EXPECT_FALSE(OptionsFromConfig(cfg).ok());
}

TEST(EmulatorConfigTest, FaultsJsonPartialUpdateAndErrors) {
  Faults f;
  f.delay_ms = 5;
  ASSERT_TRUE(ApplyFaultsJson(nlohmann::json{{"fail_next", 2}, {"fail_status", 503}}, &f).ok());
  EXPECT_EQ(f.delay_ms, 5) << "a field not given must be kept";
  EXPECT_EQ(f.fail_next, 2);
  EXPECT_EQ(FaultsToJson(f)["fail_status"], 503);
  const Faults before = f;
  EXPECT_FALSE(ApplyFaultsJson(nlohmann::json{{"fail_status", 404}}, &f).ok());
  EXPECT_FALSE(ApplyFaultsJson(nlohmann::json{{"delay_ms", -1}}, &f).ok());
  EXPECT_FALSE(ApplyFaultsJson(nlohmann::json{{"reject_alpn", 1}}, &f).ok());
  EXPECT_FALSE(ApplyFaultsJson(nlohmann::json{{"fail_target", "sms"}}, &f).ok());
  EXPECT_FALSE(ApplyFaultsJson(nlohmann::json{{"fail_next", 1}, {"typo", 1}}, &f).ok());
  EXPECT_EQ(f.fail_next, before.fail_next) << "a rejected update must change nothing";
  EXPECT_FALSE(ApplyFaultsJson(nlohmann::json::array(), &f).ok());
}

}  // namespace
}  // namespace pushgate::pusher::emulator
