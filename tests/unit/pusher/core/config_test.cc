#include "pusher/core/config.h"

#include <gtest/gtest.h>

#include <functional>

#include "absl/strings/match.h"

namespace pushgate::pusher {
namespace {

TEST(PusherConfig, Defaults) {
  PusherConfig c;
  config::Schema schema("pushgate-pusher");
  AddToSchema(schema, &c);
  ASSERT_TRUE(config::LoadFromString(schema, "", "test.toml", config::NoEnv()).ok());
  EXPECT_EQ(c.grpc.listen, "127.0.0.1:50061");
  EXPECT_FALSE(c.grpc.allow_insecure);
  EXPECT_EQ(c.apns.production_url, "https://api.push.apple.com");
  EXPECT_EQ(c.apns.sandbox_url, "https://api.sandbox.push.apple.com");
  EXPECT_EQ(c.apns.token_refresh_age, absl::Minutes(40));
  EXPECT_EQ(c.fcm.base_url, "https://fcm.googleapis.com");
  EXPECT_TRUE(c.http2.verify_peer);
  EXPECT_EQ(c.http2.max_connections_per_pool, 4);
  EXPECT_EQ(c.http2.min_connections_per_pool, 1);
  EXPECT_EQ(c.http2.max_queue_per_pool, 10000);
  EXPECT_EQ(c.http2.ping_interval, absl::Seconds(60));
  EXPECT_EQ(c.retry.max_attempts, 5);
  EXPECT_EQ(c.idempotency.window, absl::Minutes(5));
  EXPECT_EQ(c.admin.listen, "127.0.0.1:9101");
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c);
}

TEST(PusherConfig, EveryKeyDocumentedWithDefault) {
  PusherConfig c;
  config::Schema schema("pushgate-pusher");
  AddToSchema(schema, &c);
  EXPECT_GE(schema.fields().size(), 30u);
  for (const auto& f : schema.fields()) {
    EXPECT_TRUE(absl::StrContains(f.doc, "Default:")) << f.section << "." << f.key;
  }
  for (const char* key : {"grpc.listen",
                          "grpc.tls_cert_file",
                          "grpc.tls_key_file",
                          "grpc.client_ca_file",
                          "grpc.allow_insecure",
                          "grpc.api_keys_file",
                          "grpc.deadline_default",
                          "apns.token_keys",
                          "apns.certificates",
                          "apns.production_url",
                          "apns.sandbox_url",
                          "apns.token_refresh_age",
                          "fcm.service_accounts",
                          "fcm.base_url",
                          "fcm.token_uri_override",
                          "http2.ca_file",
                          "http2.verify_peer",
                          "http2.max_connections_per_pool",
                          "http2.min_connections_per_pool",
                          "http2.max_queue_per_pool",
                          "http2.connect_timeout",
                          "http2.ping_interval",
                          "http2.request_timeout",
                          "retry.initial_backoff",
                          "retry.max_backoff",
                          "retry.max_attempts",
                          "idempotency.window",
                          "idempotency.max_entries",
                          "admin.listen",
                          "log.format",
                          "log.level",
                          "log.components"}) {
    std::string k = key;
    size_t dot = k.find('.');
    EXPECT_NE(schema.Find(k.substr(0, dot), k.substr(dot + 1)), nullptr) << key;
  }
}

TEST(PusherConfig, DumpLoadRoundTrip) {
  PusherConfig c;
  c.grpc.listen = "[::1]:6000";
  c.apns.token_keys = {"ABCD123456:KEY1234567:/etc/pushgate/AuthKey.p8"};
  c.apns.certificates = {"com.example.app:/c.pem:/k.pem"};
  c.fcm.service_accounts = {"/etc/pushgate/sa.json"};
  c.http2.max_queue_per_pool = 77;
  c.retry.jitter = 0.5;
  c.idempotency.window = absl::Seconds(90);
  c.log.format = "json";
  config::Schema schema("pushgate-pusher");
  AddToSchema(schema, &c);
  std::string dumped = config::Dump(schema);

  PusherConfig loaded;
  config::Schema schema2("pushgate-pusher");
  AddToSchema(schema2, &loaded);
  absl::Status s = config::LoadFromString(schema2, dumped, "dump.toml", config::NoEnv());
  ASSERT_TRUE(s.ok()) << s << "\n" << dumped;
  EXPECT_EQ(loaded.grpc.listen, "[::1]:6000");
  EXPECT_EQ(loaded.apns.token_keys, c.apns.token_keys);
  EXPECT_EQ(loaded.apns.certificates, c.apns.certificates);
  EXPECT_EQ(loaded.fcm.service_accounts, c.fcm.service_accounts);
  EXPECT_EQ(loaded.http2.max_queue_per_pool, 77);
  EXPECT_EQ(loaded.retry.jitter, 0.5);
  EXPECT_EQ(loaded.idempotency.window, absl::Seconds(90));
  EXPECT_EQ(loaded.log.format, "json");
  EXPECT_EQ(config::Dump(schema2), dumped);
  EXPECT_TRUE(ValidateConfig(loaded).ok()) << ValidateConfig(loaded);
}

TEST(PusherConfig, RangeErrorsFromToml) {
  PusherConfig c;
  config::Schema schema("pushgate-pusher");
  AddToSchema(schema, &c);
  absl::Status s = config::LoadFromString(schema, "[apns]\ntoken_refresh_age = \"10m\"\n", "p.toml",
                                          config::NoEnv());
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "apns.token_refresh_age")) << s;
}

struct BadConfig {
  const char* name;
  std::function<void(PusherConfig&)> mutate;
  const char* expected;
};

TEST(ValidateConfig, CrossFieldRules) {
  const BadConfig cases[] = {
      {"listen garbage", [](PusherConfig& c) { c.grpc.listen = "nope"; }, "grpc.listen"},
      {"cert without key", [](PusherConfig& c) { c.grpc.tls_cert_file = "/c.pem"; },
       "must be set together"},
      {"mtls without tls", [](PusherConfig& c) { c.grpc.client_ca_file = "/ca.pem"; },
       "grpc.client_ca_file"},
      {"plaintext public", [](PusherConfig& c) { c.grpc.listen = "0.0.0.0:50061"; },
       "allow_insecure"},
      {"admin listen", [](PusherConfig& c) { c.admin.listen = "x"; }, "admin.listen"},
      {"more kept open than allowed",
       [](PusherConfig& c) {
         c.http2.max_connections_per_pool = 2;
         c.http2.min_connections_per_pool = 3;
       },
       "http2.min_connections_per_pool (3) is more than http2.max_connections_per_pool (2)"},
      {"token key", [](PusherConfig& c) { c.apns.token_keys = {"bad"}; },
       "apns.token_keys entry 'bad'"},
      {"duplicate team",
       [](PusherConfig& c) {
         c.apns.token_keys = {"ABCD123456:KEY1234567:/a.p8", "ABCD123456:KEY7654321:/b.p8"};
       },
       "already has a key"},
      {"certificate", [](PusherConfig& c) { c.apns.certificates = {"only"}; },
       "apns.certificates entry 'only'"},
      {"duplicate bundle",
       [](PusherConfig& c) {
         c.apns.certificates = {"com.a:/c.pem", "com.a:/d.pem"};
       },
       "already has a certificate"},
      {"empty sa", [](PusherConfig& c) { c.fcm.service_accounts = {""}; }, "fcm.service_accounts"},
      {"url scheme", [](PusherConfig& c) { c.apns.production_url = "api.push.apple.com"; },
       "apns.production_url"},
      {"url path", [](PusherConfig& c) { c.fcm.base_url = "https://fcm.googleapis.com/v1"; },
       "without a path"},
      {"token uri", [](PusherConfig& c) { c.fcm.token_uri_override = "ftp://x"; },
       "fcm.token_uri_override"},
      {"backoff order",
       [](PusherConfig& c) {
         c.retry.initial_backoff = absl::Seconds(10);
         c.retry.max_backoff = absl::Seconds(1);
       },
       "retry.initial_backoff"},
  };
  for (const BadConfig& bc : cases) {
    PusherConfig c;
    bc.mutate(c);
    absl::Status s = ValidateConfig(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bc.name;
    EXPECT_TRUE(absl::StrContains(s.message(), bc.expected)) << bc.name << ": " << s;
  }
}

TEST(ValidateConfig, AcceptedVariants) {
  PusherConfig c;
  c.grpc.listen = "0.0.0.0:50061";
  c.grpc.allow_insecure = true;
  EXPECT_TRUE(ValidateConfig(c).ok());
  c.grpc.allow_insecure = false;
  c.grpc.tls_cert_file = "/c.pem";
  c.grpc.tls_key_file = "/k.pem";
  c.grpc.client_ca_file = "/ca.pem";
  EXPECT_TRUE(ValidateConfig(c).ok());
  PusherConfig local;
  local.grpc.listen = "localhost:0";
  local.admin.listen = "";
  local.apns.production_url = "https://127.0.0.1:8443";
  local.fcm.token_uri_override = "https://127.0.0.1:8443/token";
  EXPECT_TRUE(ValidateConfig(local).ok()) << ValidateConfig(local);
}

TEST(ParseTokenKeySpec, GoodAndErrors) {
  absl::StatusOr<TokenKeySpec> s = ParseTokenKeySpec("ABCD123456:KEY1234567:/p/AuthKey:x.p8");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->team_id, "ABCD123456");
  EXPECT_EQ(s->key_id, "KEY1234567");
  EXPECT_EQ(s->key_file, "/p/AuthKey:x.p8");
  for (const auto& [entry, why] : std::vector<std::pair<std::string, std::string>>{
           {"ABCD123456:KEY1234567", "three"},
           {"ABCD:KEY1234567:/a.p8", "team id"},
           {"ABCD123456:key:/a.p8", "key id"},
           {"ABCD123456:KEY1234567:", "path is empty"}}) {
    absl::Status st = ParseTokenKeySpec(entry).status();
    EXPECT_TRUE(absl::StrContains(st.message(), "'" + entry + "'")) << st;
    EXPECT_TRUE(absl::StrContains(st.message(), why)) << st;
  }
}

TEST(ParseCertificateSpec, GoodAndErrors) {
  absl::StatusOr<CertificateSpec> s = ParseCertificateSpec("com.example.app:/c.pem:/k.pem");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->bundle_id, "com.example.app");
  EXPECT_EQ(s->cert_file, "/c.pem");
  EXPECT_EQ(s->key_file, "/k.pem");
  absl::StatusOr<CertificateSpec> both = ParseCertificateSpec("com.example.app:/both.pem");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->key_file, "/both.pem");
  for (const auto& [entry, why] :
       std::vector<std::pair<std::string, std::string>>{{"com.example.app", "2 or 3"},
                                                        {"a:b:c:d", "2 or 3"},
                                                        {"com..app:/c.pem", "bundle id"},
                                                        {"com.app::/k.pem", "certificate path"},
                                                        {"com.app:/c.pem:", "key path"}}) {
    absl::Status st = ParseCertificateSpec(entry).status();
    EXPECT_TRUE(absl::StrContains(st.message(), "'" + entry + "'")) << st;
    EXPECT_TRUE(absl::StrContains(st.message(), why)) << entry << ": " << st;
  }
}

TEST(ParseApiKeysFile, GoodFile) {
  absl::StatusOr<std::vector<ApiKeyEntry>> keys = ParseApiKeysFile(
      "# clients\n"
      "proxy   0123456789abcdef0123  com.example.phone,my-project\n"
      "\n"
      "admin\tffffffffffffffffffff *   # every app\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].client, "proxy");
  EXPECT_EQ((*keys)[0].key, "0123456789abcdef0123");
  EXPECT_TRUE((*keys)[0].Allows("my-project"));
  EXPECT_FALSE((*keys)[0].Allows("other"));
  EXPECT_TRUE((*keys)[1].all_apps);
  EXPECT_TRUE((*keys)[1].Allows("anything"));
}

TEST(ParseApiKeysFile, ErrorsNameTheLine) {
  for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"a 0123456789abcdef\n", "line 1: expected"},
           {"\na short app\n", "line 2: API key of client 'a' is 5 characters"},
           {"a 0123456789abcdef x\na 0123456789abcdeg y\n", "line 2: client 'a' appears twice"},
           {"a 0123456789abcdef x\nb 0123456789abcdef y\n",
            "line 2: API key of client 'b' is "
            "already used"},
           {"a 0123456789abcdef x,,y\n", "line 1: app list"},
           {"a 0123456789abcdef x,*\n", "line 1: app list"}}) {
    absl::Status st = ParseApiKeysFile(text).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(st.message(), why)) << st;
  }
  EXPECT_TRUE(ParseApiKeysFile("").ok());
}

TEST(HostPort, Parsing) {
  std::string host;
  int port = 0;
  ASSERT_TRUE(ParseHostPort("[::1]:50061", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 50061);
  EXPECT_TRUE(IsLoopbackHost(host));
  EXPECT_FALSE(ParseHostPort("::1:5", &host, &port).ok());
  EXPECT_FALSE(ParseHostPort("h:70000", &host, &port).ok());
  EXPECT_FALSE(ParseHostPort(":80", &host, &port).ok());
  EXPECT_TRUE(IsLoopbackHost("127.0.0.2"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
}

}  // namespace
}  // namespace pushgate::pusher
