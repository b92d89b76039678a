// The emulator over real TLS + HTTP/2 on 127.0.0.1: APNs error codes, token and certificate
// auth, FCM OAuth flow, faults, recording, the control API and the executable.
#include "pusher/emulator/emulator.h"

#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pusher/core/jwt.h"
#include "tests/fakes/fake_clock.h"
#include "tests/integration/emulator/h2_test_client.h"

namespace pushgate::pusher::emulator {
namespace {

using ::pushgate::testing::H2ClientOptions;
using ::pushgate::testing::H2Response;
using ::pushgate::testing::H2TestClient;
using ::testing::HasSubstr;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr char kTeam[] = "TEAM123456";
constexpr char kKeyId[] = "KEY1234567";
constexpr char kBundle[] = "com.example.phone";
constexpr char kProject[] = "pushgate-test";
constexpr char kEmail[] = "pusher@pushgate-test.iam.gserviceaccount.com";
const std::string kToken(64, 'a');
const std::string kFcmToken = "fcmtoken_" + std::string(140, 'x') + ":APA91b";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Credentials {
  std::string dir;
  std::string apns_p8, apns_pub, fcm_key, fcm_pub, client_ca, client_cert, client_key;
  std::string other_p8;  // an unrelated EC key (signature must fail)
};

Credentials* creds = nullptr;

class EmulatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (creds != nullptr) return;
    creds = new Credentials;
    // Key generation (RSA) is the slow part: every test process of the same script version
    // shares one directory, created under a temporary name and renamed into place.
    const std::string script = ReadFile("tests/fakes/make-test-credentials.sh");
    ASSERT_FALSE(script.empty()) << "tests/fakes/make-test-credentials.sh not found";
    creds->dir = absl::StrCat("/tmp/pushgate-emulator-test-creds-", getuid(), "-",
                              std::hash<std::string>{}(script));
    if (!std::filesystem::exists(creds->dir + "/credentials.env")) {
      char tmpl[] = "/tmp/pushgate-emulator-test-new-XXXXXX";
      const std::string tmp = mkdtemp(tmpl);
      const std::string cmd = absl::StrCat("tests/fakes/make-test-credentials.sh ", tmp,
                                           " >/dev/null && openssl genpkey -algorithm EC "
                                           "-pkeyopt ec_paramgen_curve:P-256 -out ",
                                           tmp, "/other.p8 2>/dev/null");
      ASSERT_EQ(std::system(cmd.c_str()), 0) << "make-test-credentials.sh failed";
      if (std::rename(tmp.c_str(), creds->dir.c_str()) != 0) {
        std::filesystem::remove_all(tmp);  // another process won the race: use its files
      }
    }
    creds->apns_p8 = ReadFile(creds->dir + "/apns-key.p8");
    creds->apns_pub = ReadFile(creds->dir + "/apns-key.pub.pem");
    creds->fcm_key = ReadFile(creds->dir + "/fcm-sa.key");
    creds->fcm_pub = ReadFile(creds->dir + "/fcm-sa.pub.pem");
    creds->client_ca = ReadFile(creds->dir + "/client-ca.pem");
    creds->client_cert = creds->dir + "/apns-client.pem";
    creds->client_key = creds->dir + "/apns-client.key";
    creds->other_p8 = ReadFile(creds->dir + "/other.p8");
  }

  EmulatorOptions BaseOptions() {
    EmulatorOptions o;
    o.apns_keys.push_back({kTeam, kKeyId, creds->apns_pub});
    o.apns_topics[kTeam] = {kBundle};
    o.fcm_accounts.push_back({kEmail, creds->fcm_pub, kProject});
    o.client_ca_pem = creds->client_ca;
    o.clock = &clock_;
    return o;
  }

  void StartEmulator(EmulatorOptions o) {
    auto ports = emu_.Start(std::move(o));
    ASSERT_TRUE(ports.ok()) << ports.status();
    ports_ = *ports;
  }

  void SetUp() override {
    clock_.Set(absl::Now());
    StartEmulator(BaseOptions());
  }

  std::unique_ptr<H2TestClient> Connect(bool with_cert = false) {
    auto c = std::make_unique<H2TestClient>();
    H2ClientOptions o;
    o.port = ports_.h2;
    o.ca_pem = emu_.ca_pem();
    if (with_cert) {
      o.cert_file = creds->client_cert;
      o.key_file = creds->client_key;
    }
    absl::Status s = c->Connect(o);
    EXPECT_TRUE(s.ok()) << s;
    return c;
  }

  std::string ApnsJwt(absl::Duration age = absl::ZeroDuration(), const std::string& kid = kKeyId,
                      const std::string* p8 = nullptr) {
    auto key = LoadPrivateKeyPem(p8 != nullptr ? *p8 : creds->apns_p8);
    EXPECT_TRUE(key.ok()) << key.status();
    auto jwt = SignJwt(JwtAlg::kEs256, *key, {{"kid", kid}},
                       {{"iss", kTeam}, {"iat", absl::ToUnixSeconds(clock_.Now() - age)}});
    EXPECT_TRUE(jwt.ok()) << jwt.status();
    return *jwt;
  }

  Headers VoipHeaders() {
    return {{"authorization", "bearer " + ApnsJwt()},
            {"apns-topic", std::string(kBundle) + ".voip"},
            {"apns-push-type", "voip"},
            {"apns-priority", "10"},
            {"apns-expiration", "0"}};
  }

  static std::string Reason(const H2Response& r) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("reason")) return "<no reason>";
    return j["reason"].get<std::string>();
  }

  std::string Assertion(nlohmann::json claims_override = nlohmann::json::object()) {
    auto key = LoadPrivateKeyPem(creds->fcm_key);
    EXPECT_TRUE(key.ok()) << key.status();
    const int64_t now = absl::ToUnixSeconds(clock_.Now());
    nlohmann::json claims = {{"iss", kEmail},
                             {"scope", "https://www.googleapis.com/auth/firebase.messaging"},
                             {"aud", "https://127.0.0.1/token"},
                             {"iat", now},
                             {"exp", now + 3600}};
    for (auto it = claims_override.begin(); it != claims_override.end(); ++it) {
      claims[it.key()] = it.value();
    }
    auto jwt = SignJwt(JwtAlg::kRs256, *key, nullptr, claims);
    EXPECT_TRUE(jwt.ok()) << jwt.status();
    return *jwt;
  }

  H2Response TokenRequest(
      H2TestClient& c, const std::string& assertion,
      const std::string& grant = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") {
    return c.Request("POST", "/token", {{"content-type", "application/x-www-form-urlencoded"}},
                     absl::StrCat("grant_type=", grant, "&assertion=", assertion));
  }

  std::string AccessToken(H2TestClient& c) {
    H2Response r = TokenRequest(c, Assertion());
    EXPECT_EQ(r.status, 200) << r.body;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.contains("access_token")) return "";
    return j["access_token"].get<std::string>();
  }

  H2Response FcmSend(H2TestClient& c, const std::string& access_token, const std::string& body,
                     const std::string& project = kProject) {
    return c.Request(
        "POST", absl::StrCat("/v1/projects/", project, "/messages:send"),
        {{"authorization", "Bearer " + access_token}, {"content-type", "application/json"}}, body);
  }

  static std::string FcmBody(const std::string& token) {
    return nlohmann::json{{"message",
                           {{"token", token},
                            {"data", {{"call_id", "abc"}}},
                            {"android", {{"priority", "high"}, {"ttl", "30s"}}}}}}
        .dump();
  }

  FakeClock clock_;
  Emulator emu_;
  BoundPorts ports_;
};

// ---------------------------------------------------------------------------------------------
// APNs

TEST_F(EmulatorTest, ApnsTokenAuthAcceptedEchoesApnsIdLowercase) {
  auto c = Connect();
  Headers h = VoipHeaders();
  h.emplace_back("apns-id", "123E4567-E89B-12D3-A456-426614174000");
  H2Response r = c->Request("POST", "/3/device/" + kToken, h, R"({"aps":{}})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("apns-id"), "123e4567-e89b-12d3-a456-426614174000");
  EXPECT_EQ(r.body, "");
}

TEST_F(EmulatorTest, ApnsGeneratesUuidWhenNoApnsId) {
  auto c = Connect();
  H2Response r = c->Request("POST", "/3/device/" + kToken, VoipHeaders(), R"({"aps":{}})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::string id = r.Header("apns-id");
  EXPECT_THAT(id, ::testing::MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                          "[0-9a-f]{12}"));
}

struct ApnsCase {
  const char* name;
  std::function<void(std::string& method, std::string& path, Headers& h, std::string& body,
                     EmulatorTest* t)>
      mutate;
  int status;
  const char* reason;
};

void SetHeader(Headers& h, const std::string& k, const std::string& v) {
  for (auto& [hk, hv] : h) {
    if (hk == k) {
      hv = v;
      return;
    }
  }
  h.emplace_back(k, v);
}

void RemoveHeader(Headers& h, const std::string& k) {
  h.erase(std::remove_if(h.begin(), h.end(), [&](const auto& p) { return p.first == k; }), h.end());
}

class EmulatorApnsErrorTest : public EmulatorTest {
 public:
  std::string Jwt(absl::Duration age, const std::string& kid, const std::string* p8) {
    return ApnsJwt(age, kid, p8);
  }
};

TEST_F(EmulatorApnsErrorTest, EveryErrorCodeWithItsReason) {
  const std::vector<ApnsCase> cases = {
      {"empty token path", [](auto&, auto& p, auto&, auto&, auto*) { p = "/3/device/"; }, 404,
       "BadPath"},
      {"unknown path", [](auto&, auto& p, auto&, auto&, auto*) { p = "/4/device/x"; }, 404,
       "BadPath"},
      {"GET", [](auto& m, auto&, auto&, auto&, auto*) { m = "GET"; }, 405, "MethodNotAllowed"},
      {"no token, no certificate",
       [](auto&, auto&, auto& h, auto&, auto*) { RemoveHeader(h, "authorization"); }, 403,
       "MissingProviderToken"},
      {"not a bearer token",
       [](auto&, auto&, auto& h, auto&, auto*) { SetHeader(h, "authorization", "basic abc"); }, 403,
       "InvalidProviderToken"},
      {"garbage JWT",
       [](auto&, auto&, auto& h, auto&, auto*) { SetHeader(h, "authorization", "bearer a.b.c"); },
       403, "InvalidProviderToken"},
      {"unknown key id",
       [](auto&, auto&, auto& h, auto&, EmulatorTest* t) {
         SetHeader(h, "authorization",
                   "bearer " + static_cast<EmulatorApnsErrorTest*>(t)->Jwt(absl::ZeroDuration(),
                                                                           "NOSUCHKEY1", nullptr));
       },
       403, "InvalidProviderToken"},
      {"signed by another key",
       [](auto&, auto&, auto& h, auto&, EmulatorTest* t) {
         SetHeader(h, "authorization",
                   "bearer " + static_cast<EmulatorApnsErrorTest*>(t)->Jwt(
                                   absl::ZeroDuration(), kKeyId, &creds->other_p8));
       },
       403, "InvalidProviderToken"},
      {"token older than an hour",
       [](auto&, auto&, auto& h, auto&, EmulatorTest* t) {
         SetHeader(h, "authorization",
                   "bearer " + static_cast<EmulatorApnsErrorTest*>(t)->Jwt(absl::Seconds(3601),
                                                                           kKeyId, nullptr));
       },
       403, "ExpiredProviderToken"},
      {"no topic", [](auto&, auto&, auto& h, auto&, auto*) { RemoveHeader(h, "apns-topic"); }, 400,
       "MissingTopic"},
      {"topic of another app",
       [](auto&, auto&, auto& h, auto&, auto*) {
         SetHeader(h, "apns-topic", "com.other.app.voip");
       },
       400, "TopicDisallowed"},
      {"short token", [](auto&, auto& p, auto&, auto&, auto*) { p = "/3/device/abcd"; }, 400,
       "BadDeviceToken"},
      {"non-hex token",
       [](auto&, auto& p, auto&, auto&, auto*) { p = "/3/device/" + std::string(64, 'z'); }, 400,
       "BadDeviceToken"},
      {"bad apns-id",
       [](auto&, auto&, auto& h, auto&, auto*) { SetHeader(h, "apns-id", "not-a-uuid"); }, 400,
       "BadMessageId"},
      {"unknown push type",
       [](auto&, auto&, auto& h, auto&, auto*) { SetHeader(h, "apns-push-type", "telepathy"); },
       400, "InvalidPushType"},
      {"voip push to a non-voip topic",
       [](auto&, auto&, auto& h, auto&, auto*) { SetHeader(h, "apns-topic", kBundle); }, 400,
       "BadTopic"},
      {"priority 7",
       [](auto&, auto&, auto& h, auto&, auto*) { SetHeader(h, "apns-priority", "7"); }, 400,
       "BadPriority"},
      {"background at priority 10",
       [](auto&, auto&, auto& h, auto&, auto*) {
         SetHeader(h, "apns-push-type", "background");
         SetHeader(h, "apns-topic", kBundle);
       },
       400, "BadPriority"},
      {"expiration not numeric",
       [](auto&, auto&, auto& h, auto&, auto*) { SetHeader(h, "apns-expiration", "tomorrow"); },
       400, "BadExpirationDate"},
      {"collapse id of 65 bytes",
       [](auto&, auto&, auto& h, auto&, auto*) {
         SetHeader(h, "apns-collapse-id", std::string(65, 'c'));
       },
       400, "BadCollapseId"},
      {"empty body", [](auto&, auto&, auto&, auto& b, auto*) { b.clear(); }, 400, "PayloadEmpty"},
      {"body not JSON", [](auto&, auto&, auto&, auto& b, auto*) { b = "{nope"; }, 400,
       "BadPayload"},
      {"voip body over 5120",
       [](auto&, auto&, auto&, auto& b, auto*) {
         b = R"({"x":")" + std::string(5121, 'p') + R"("})";
       },
       413, "PayloadTooLarge"},
      {"alert body over 4096",
       [](auto&, auto&, auto& h, auto& b, auto*) {
         SetHeader(h, "apns-push-type", "alert");
         SetHeader(h, "apns-topic", kBundle);
         b = R"({"x":")" + std::string(4090, 'p') + R"("})";
       },
       413, "PayloadTooLarge"},
  };
  auto c = Connect();
  for (const ApnsCase& tc : cases) {
    SCOPED_TRACE(tc.name);
    std::string method = "POST";
    std::string path = "/3/device/" + kToken;
    Headers h = VoipHeaders();
    std::string body = R"({"aps":{}})";
    tc.mutate(method, path, h, body, this);
    H2Response r = c->Request(method, path, h, body);
    EXPECT_EQ(r.status, tc.status) << r.body;
    EXPECT_EQ(Reason(r), tc.reason) << r.body;
    EXPECT_FALSE(r.Header("apns-id").empty());
  }
  // The same request with nothing wrong passes: every case above failed for its own reason.
  H2Response ok = c->Request("POST", "/3/device/" + kToken, VoipHeaders(), R"({"aps":{}})");
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(EmulatorTest, ApnsVoipPayloadUpTo5120Accepted) {
  auto c = Connect();
  std::string body = R"({"x":")" + std::string(5000, 'p') + R"("})";
  H2Response r = c->Request("POST", "/3/device/" + kToken, VoipHeaders(), body);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(EmulatorTest, ApnsBackgroundAtPriority5Accepted) {
  auto c = Connect();
  Headers h = VoipHeaders();
  SetHeader(h, "apns-push-type", "background");
  SetHeader(h, "apns-topic", kBundle);
  SetHeader(h, "apns-priority", "5");
  H2Response r = c->Request("POST", "/3/device/" + kToken, h, R"({"aps":{"content-available":1}})");
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(EmulatorTest, ApnsDeadTokenAnswers410WithTimestamp) {
  const absl::Time since = absl::FromUnixMillis(1'700'000'000'123);
  emu_.MarkDead(Provider::kApns, kToken, since);
  auto c = Connect();
  H2Response r = c->Request("POST", "/3/device/" + kToken, VoipHeaders(), R"({"aps":{}})");
  EXPECT_EQ(r.status, 410);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.body;
  EXPECT_EQ(j["reason"], "Unregistered");
  EXPECT_EQ(j["timestamp"], 1'700'000'000'123);
  // Another token on the same app still works.
  H2Response ok =
      c->Request("POST", "/3/device/" + std::string(64, 'b'), VoipHeaders(), R"({"aps":{}})");
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(EmulatorTest, ApnsExpiredTokenFollowsTheEmulatorClock) {
  auto c = Connect();
  Headers h = VoipHeaders();  // iat = now
  EXPECT_EQ(c->Request("POST", "/3/device/" + kToken, h, "{}").status, 200);
  clock_.Advance(absl::Minutes(61));
  H2Response r = c->Request("POST", "/3/device/" + kToken, h, "{}");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Reason(r), "ExpiredProviderToken");
}

TEST_F(EmulatorTest, StrictTokenUpdatesRefusesRefreshWithin20Minutes) {
  emu_.Stop();
  Emulator emu2;
  EmulatorOptions o = BaseOptions();
  o.strict_token_updates = true;
  auto ports = emu2.Start(o);
  ASSERT_TRUE(ports.ok()) << ports.status();
  H2TestClient c;
  H2ClientOptions co;
  co.port = ports->h2;
  co.ca_pem = emu2.ca_pem();
  ASSERT_TRUE(c.Connect(co).ok());
  auto send = [&](const std::string& jwt) {
    Headers h = VoipHeaders();
    SetHeader(h, "authorization", "bearer " + jwt);
    return c.Request("POST", "/3/device/" + kToken, h, "{}");
  };
  const std::string first = ApnsJwt();
  EXPECT_EQ(send(first).status, 200);
  clock_.Advance(absl::Minutes(5));
  H2Response r = send(ApnsJwt());  // a new token 5 minutes later
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(Reason(r), "TooManyProviderTokenUpdates");
  EXPECT_EQ(send(first).status, 200) << "the current token must keep working";
  clock_.Advance(absl::Minutes(16));
  EXPECT_EQ(send(ApnsJwt()).status, 200) << "a refresh after 21 minutes is allowed";
  EXPECT_EQ(emu2.Stats()["apns_provider_tokens"], 2);
}

TEST_F(EmulatorTest, ApnsCertificateAuthAllowsTheCertificatesTopicsOnly) {
  auto c = Connect(/*with_cert=*/true);
  Headers h = {{"apns-topic", std::string(kBundle) + ".voip"}, {"apns-push-type", "voip"}};
  H2Response r = c->Request("POST", "/3/device/" + kToken, h, "{}");
  EXPECT_EQ(r.status, 200) << r.body;
  SetHeader(h, "apns-topic", "com.other.app.voip");
  r = c->Request("POST", "/3/device/" + kToken, h, "{}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Reason(r), "TopicDisallowed");
  // Without the certificate, the same request has no credential at all.
  auto plain = Connect(/*with_cert=*/false);
  SetHeader(h, "apns-topic", std::string(kBundle) + ".voip");
  r = plain->Request("POST", "/3/device/" + kToken, h, "{}");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Reason(r), "MissingProviderToken");
}

TEST_F(EmulatorTest, RequiresAlpnH2) {
  H2TestClient c;
  H2ClientOptions o;
  o.port = ports_.h2;
  o.ca_pem = emu_.ca_pem();
  o.offer_h2 = false;
  absl::Status s = c.Connect(o);
  EXPECT_FALSE(s.ok()) << "a client offering only http/1.1 was accepted";
  EXPECT_GE(emu_.Stats()["connections"]["alpn_rejected"].get<int>(), 1);
}

TEST_F(EmulatorTest, RejectAlpnFaultFailsHandshakeOfH2Clients) {
  Faults f;
  f.reject_alpn = true;
  emu_.SetFaults(f);
  H2TestClient c;
  H2ClientOptions o;
  o.port = ports_.h2;
  o.ca_pem = emu_.ca_pem();
  EXPECT_FALSE(c.Connect(o).ok());
  emu_.SetFaults(Faults{});
  EXPECT_NE(Connect(), nullptr);
}

// ---------------------------------------------------------------------------------------------
// FCM + OAuth

TEST_F(EmulatorTest, FcmOAuthFlowThenSend) {
  auto c = Connect();
  H2Response tok = TokenRequest(*c, Assertion());
  ASSERT_EQ(tok.status, 200) << tok.body;
  auto j = nlohmann::json::parse(tok.body);
  EXPECT_EQ(j["token_type"], "Bearer");
  EXPECT_EQ(j["expires_in"], 3600);
  const std::string access = j["access_token"];
  ASSERT_FALSE(access.empty());

  H2Response r = FcmSend(*c, access, FcmBody(kFcmToken));
  ASSERT_EQ(r.status, 200) << r.body;
  auto name = nlohmann::json::parse(r.body)["name"].get<std::string>();
  EXPECT_THAT(name, ::testing::StartsWith(absl::StrCat("projects/", kProject, "/messages/")));
}

TEST_F(EmulatorTest, FcmErrors) {
  auto c = Connect();
  const std::string access = AccessToken(*c);
  auto error_code = [](const H2Response& r) -> std::string {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.contains("error")) return "<no error>";
    const auto& e = j["error"];
    EXPECT_EQ(e["code"].get<int>(), r.status) << r.body;
    if (!e.contains("details")) return e["status"].get<std::string>();
    EXPECT_EQ(e["details"][0]["@type"], "type.googleapis.com/google.firebase.fcm.v1.FcmError");
    return absl::StrCat(e["status"].get<std::string>(), "/",
                        e["details"][0]["errorCode"].get<std::string>());
  };

  H2Response r = FcmSend(*c, "ya29.not-issued", FcmBody(kFcmToken));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(error_code(r), "UNAUTHENTICATED");

  r = FcmSend(*c, access, FcmBody(kFcmToken), "another-project");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(error_code(r), "PERMISSION_DENIED/SENDER_ID_MISMATCH");

  for (const std::string& bad : {
           std::string("{not json"),
           std::string(R"({"message":{}})"),             // no target
           std::string(R"({"message":{"token":"x"}})"),  // not a token
           std::string(R"({"message":{"token":")" + kFcmToken + R"(","bogus":1}})"),
           std::string(R"({"message":{"token":")" + kFcmToken + R"(","data":{"n":1}}})"),
           std::string(R"({"message":{"token":")" + kFcmToken +
                       R"(","android":{"priority":"urgent"}}})"),
           std::string(R"({"message":{"token":")" + kFcmToken + R"(","android":{"ttl":"30"}}})"),
           std::string(R"({"message":{"token":")" + kFcmToken + R"(","data":{"big":")" +
                       std::string(5000, 'x') + R"("}}})"),
       }) {
    SCOPED_TRACE(bad.substr(0, 80));
    r = FcmSend(*c, access, bad);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(error_code(r), "INVALID_ARGUMENT/INVALID_ARGUMENT");
  }

  emu_.MarkDead(Provider::kFcm, kFcmToken);
  r = FcmSend(*c, access, FcmBody(kFcmToken));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_code(r), "NOT_FOUND/UNREGISTERED");
}

TEST_F(EmulatorTest, OAuthRejectsBadAssertions) {
  auto c = Connect();
  auto error = [](const H2Response& r) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_discarded() ? std::string("<not json>") : j.value("error", "<none>");
  };
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  struct Case {
    const char* name;
    nlohmann::json claims;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"unknown account", {{"iss", "nobody@example.com"}}, "invalid_grant"},
      {"wrong audience", {{"aud", "https://evil.example/token"}}, "invalid_grant"},
      {"lives over an hour", {{"exp", now + 3601}}, "invalid_grant"},
      {"already expired", {{"iat", now - 4000}, {"exp", now - 400}}, "invalid_grant"},
      {"no FCM scope",
       {{"scope", "https://www.googleapis.com/auth/userinfo.email"}},
       "invalid_scope"},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.name);
    H2Response r = TokenRequest(*c, Assertion(tc.claims));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(error(r), tc.error) << r.body;
  }
  // A signature that does not match: flip a character of the signature.
  std::string tampered = Assertion();
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  H2Response r = TokenRequest(*c, tampered);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error(r), "invalid_grant");
  r = TokenRequest(*c, Assertion(), "client_credentials");
  EXPECT_EQ(error(r), "unsupported_grant_type");
  // aud = https://<:authority>/token, with or without the port the client connected to.
  r = TokenRequest(*c, Assertion({{"aud", "https://127.0.0.1:1/token"}}));
  EXPECT_EQ(error(r), "invalid_grant") << "a port the client did not use was accepted";
  for (const char* aud : {"https://127.0.0.1:8443/token", "https://127.0.0.1/token"}) {
    r = c->Request(
        "POST", "/token",
        {{":authority", "127.0.0.1:8443"}, {"content-type", "application/x-www-form-urlencoded"}},
        absl::StrCat("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                     "&assertion=",
                     Assertion({{"aud", aud}})));
    EXPECT_EQ(r.status, 200) << aud << ": " << r.body;
  }
  // The request the client sends by default (aud = the Google URL) is accepted.
  r = TokenRequest(*c, Assertion({{"aud", "https://oauth2.googleapis.com/token"}}));
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(EmulatorTest, AccessTokenExpiresAfterConfiguredLifetime) {
  emu_.Stop();
  Emulator emu2;
  EmulatorOptions o = BaseOptions();
  o.token_expires_in_s = 60;
  auto ports = emu2.Start(o);
  ASSERT_TRUE(ports.ok()) << ports.status();
  ports_ = *ports;
  H2TestClient c;
  H2ClientOptions co;
  co.port = ports_.h2;
  co.ca_pem = emu2.ca_pem();
  ASSERT_TRUE(c.Connect(co).ok());
  H2Response tok = TokenRequest(c, Assertion());
  ASSERT_EQ(tok.status, 200) << tok.body;
  auto j = nlohmann::json::parse(tok.body);
  EXPECT_EQ(j["expires_in"], 60);
  const std::string access = j["access_token"];
  EXPECT_EQ(FcmSend(c, access, FcmBody(kFcmToken)).status, 200);
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(FcmSend(c, access, FcmBody(kFcmToken)).status, 401);
}

// ---------------------------------------------------------------------------------------------
// Faults

TEST_F(EmulatorTest, Fail429WithRetryAfterThenRecovers) {
  Faults f;
  f.fail_next = 2;
  f.fail_status = 429;
  f.retry_after_s = 7;
  emu_.SetFaults(f);
  auto c = Connect();
  for (int i = 0; i < 2; ++i) {
    H2Response r = c->Request("POST", "/3/device/" + kToken, VoipHeaders(), "{}");
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(Reason(r), "TooManyRequests");
    EXPECT_EQ(r.Header("retry-after"), "7");
  }
  H2Response r = c->Request("POST", "/3/device/" + kToken, VoipHeaders(), "{}");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(emu_.Stats()["faults_injected"], 2);
}

TEST_F(EmulatorTest, Fcm503UnavailableThenSuccess) {
  auto c = Connect();
  const std::string access = AccessToken(*c);
  Faults f;
  f.fail_next = 1;
  f.fail_status = 503;
  f.fail_target = "fcm";
  emu_.SetFaults(f);
  H2Response r = FcmSend(*c, access, FcmBody(kFcmToken));
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("\"UNAVAILABLE\""));
  EXPECT_EQ(FcmSend(*c, access, FcmBody(kFcmToken)).status, 200);
}

TEST_F(EmulatorTest, GoawayAfterNStreamsLeavesTheRestUnprocessed) {
  Faults f;
  f.goaway_after_streams = 3;
  f.goaway_limit = 1;
  emu_.SetFaults(f);
  auto c = Connect();
  std::vector<int32_t> ids;
  for (int i = 0; i < 6; ++i) {
    Headers h = VoipHeaders();
    h.emplace_back("apns-collapse-id", absl::StrCat("push-", i));
    ids.push_back(c->Submit("POST", "/3/device/" + kToken, h, "{}"));
  }
  ASSERT_TRUE(c->Run(absl::Seconds(5)).ok());
  ASSERT_TRUE(c->goaway_received()) << "no GOAWAY arrived";
  EXPECT_EQ(c->goaway_last_stream_id(), ids[2]);
  for (int i = 0; i < 6; ++i) {
    const H2Response& r = c->response(ids[i]);
    if (i < 3) {
      EXPECT_EQ(r.status, 200) << "stream " << ids[i];
    } else {
      EXPECT_EQ(r.status, 0) << "stream " << ids[i] << " above last-stream-id was answered";
    }
  }
  // Only the first three reached the provider logic; a new connection takes the rest.
  auto received = emu_.Received();
  ASSERT_EQ(received.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(received[i].stream_id, ids[i]);
  }
  auto c2 = Connect();
  for (int i = 3; i < 6; ++i) {
    EXPECT_EQ(c2->Request("POST", "/3/device/" + kToken, VoipHeaders(), "{}").status, 200);
  }
  EXPECT_FALSE(c2->goaway_received()) << "goaway_limit=1 but the second connection got one";
  EXPECT_EQ(emu_.Stats()["connections"]["goaway_sent"], 1);
}

TEST_F(EmulatorTest, DropAfterNStreamsLosesTheStreamsInFlight) {
  Faults f;
  f.drop_after_streams = 2;
  f.drop_limit = 1;
  emu_.SetFaults(f);
  auto c = Connect();
  std::vector<int32_t> ids;
  ids.reserve(5);
  for (int i = 0; i < 5; ++i)
    ids.push_back(c->Submit("POST", "/3/device/" + kToken, VoipHeaders(), "{}"));
  ASSERT_TRUE(c->Run(absl::Seconds(5)).ok());
  EXPECT_TRUE(c->connection_closed()) << "the connection was not dropped";
  EXPECT_FALSE(c->goaway_received());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(c->response(ids[i]).status, i < 2 ? 200 : 0) << "stream " << ids[i];
  }
  EXPECT_EQ(emu_.Received().size(), 2u);
  // drop_limit = 1: the next connection works on.
  auto c2 = Connect();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c2->Request("POST", "/3/device/" + kToken, VoipHeaders(), "{}").status, 200);
  }
  EXPECT_FALSE(c2->connection_closed());
  EXPECT_EQ(emu_.Stats()["connections"]["dropped"], 1);
}

TEST_F(EmulatorTest, DelayHoldsTheAnswer) {
  Faults f;
  f.delay_ms = 300;
  emu_.SetFaults(f);
  auto c = Connect();
  const absl::Time start = absl::Now();
  EXPECT_EQ(c->Request("POST", "/3/device/" + kToken, VoipHeaders(), "{}").status, 200);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(290));
}

TEST_F(EmulatorTest, MaxConcurrentStreamsAnnounced) {
  Faults f;
  f.max_concurrent_streams = 7;
  emu_.SetFaults(f);
  auto c = Connect();
  ASSERT_EQ(c->Request("POST", "/3/device/" + kToken, VoipHeaders(), "{}").status, 200);
  EXPECT_EQ(c->remote_max_concurrent_streams(), 7u);
}

TEST_F(EmulatorTest, SeveralLoopThreadsShareOnePort) {
  emu_.Stop();
  Emulator emu2;
  EmulatorOptions o = BaseOptions();
  o.threads = 3;
  o.control_port = -1;
  auto ports = emu2.Start(o);
  ASSERT_TRUE(ports.ok()) << ports.status();
  std::vector<std::unique_ptr<H2TestClient>> clients;
  for (int i = 0; i < 8; ++i) {
    auto c = std::make_unique<H2TestClient>();
    H2ClientOptions co;
    co.port = ports->h2;
    co.ca_pem = emu2.ca_pem();
    ASSERT_TRUE(c->Connect(co).ok());
    for (int k = 0; k < 10; ++k) c->Submit("POST", "/3/device/" + kToken, VoipHeaders(), "{}");
    clients.push_back(std::move(c));
  }
  for (auto& c : clients) ASSERT_TRUE(c->Run(absl::Seconds(5)).ok());
  ASSERT_TRUE(emu2.WaitForReceived(80, absl::Seconds(2))) << "80 requests never recorded";
  auto stats = emu2.Stats();
  EXPECT_EQ(stats["by_status"]["200"], 80);
  EXPECT_EQ(stats["by_connection"].size(), 8u);
}

// ---------------------------------------------------------------------------------------------
// Recording and control API

TEST_F(EmulatorTest, RecordsRequestsWithoutCredentials) {
  auto c = Connect();
  Headers h = VoipHeaders();
  h.emplace_back("apns-collapse-id", "call-1");
  ASSERT_EQ(c->Request("POST", "/3/device/" + kToken, h, R"({"aps":{"alert":"x"}})").status, 200);
  ASSERT_EQ(c->Request("POST", "/3/device/" + kToken, h, "{}").status, 200);
  auto c2 = Connect();
  ASSERT_EQ(c2->Request("POST", "/3/device/" + kToken, h, "{}").status, 200);
  ASSERT_EQ(TokenRequest(*c2, Assertion()).status, 200);

  ASSERT_TRUE(emu_.WaitForReceived(4, absl::Seconds(2))) << "4 requests never recorded";
  auto rec = emu_.Received();
  ASSERT_EQ(rec.size(), 4u);
  EXPECT_EQ(rec[0].provider, Provider::kApns);
  EXPECT_EQ(rec[0].token, kToken);
  EXPECT_EQ(rec[0].topic, std::string(kBundle) + ".voip");
  EXPECT_EQ(rec[0].body, R"({"aps":{"alert":"x"}})");
  EXPECT_EQ(rec[0].status, 200);
  EXPECT_FALSE(rec[0].apns_id.empty());
  for (const auto& [k, v] : rec[0].headers) EXPECT_NE(k, "authorization");
  EXPECT_THAT(rec[0].headers, ::testing::Contains(std::make_pair(std::string("apns-collapse-id"),
                                                                 std::string("call-1"))));
  EXPECT_EQ(rec[0].connection_id, rec[1].connection_id);
  EXPECT_NE(rec[1].connection_id, rec[2].connection_id);
  EXPECT_EQ(rec[3].provider, Provider::kOAuth);
  EXPECT_THAT(rec[3].body, ::testing::Not(HasSubstr(".")))  // no JWT text in the record
      << rec[3].body;
  EXPECT_EQ(emu_.Received(rec[1].seq).size(), 2u);
  auto stats = emu_.Stats();
  EXPECT_EQ(stats["requests"], 4);
  EXPECT_EQ(stats["by_path"]["/3/device/*"], 3);
  EXPECT_EQ(stats["by_status"]["200"], 4);
}

// Start returns once the control server's listen loop runs: a Stop right after it ends that loop
// (httplib's stop() does nothing before it runs, and Stop would then wait for it forever).
TEST_F(EmulatorTest, StopRightAfterStartEndsTheControlServer) {
  for (int i = 0; i < 20; ++i) {
    Emulator emu2;
    auto ports = emu2.Start(BaseOptions());
    ASSERT_TRUE(ports.ok()) << ports.status();
    ASSERT_GT(ports->control, 0);
    emu2.Stop();
  }
}

TEST_F(EmulatorTest, ControlHttpApi) {
  httplib::Client http("127.0.0.1", ports_.control);
  auto res = http.Post("/faults", R"({"fail_next":1,"fail_status":503,"retry_after_s":3})",
                       "application/json");
  ASSERT_TRUE(res) << "control endpoint unreachable";
  EXPECT_EQ(res->status, 200) << res->body;
  res = http.Post("/faults", R"({"fail_status":418})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  res = http.Post("/faults", R"({"no_such_fault":1})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  res = http.Get("/faults");
  ASSERT_TRUE(res);
  EXPECT_EQ(nlohmann::json::parse(res->body)["fail_next"], 1);

  res = http.Post("/dead-tokens",
                  nlohmann::json{{"provider", "apns"}, {"tokens", {std::string(64, 'd')}}}.dump(),
                  "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);

  auto c = Connect();
  H2Response r = c->Request("POST", "/3/device/" + kToken, VoipHeaders(), "{}");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Header("retry-after"), "3");
  r = c->Request("POST", "/3/device/" + std::string(64, 'd'), VoipHeaders(), "{}");
  EXPECT_EQ(r.status, 410);

  res = http.Get("/received?since=1");
  ASSERT_TRUE(res);
  auto got = nlohmann::json::parse(res->body)["received"];
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["status"], 410);
  EXPECT_EQ(got[0]["reason"], "Unregistered");
  EXPECT_EQ(got[0]["token"], std::string(64, 'd'));
  EXPECT_FALSE(got[0]["headers"].contains("authorization"));

  res = http.Get("/stats");
  ASSERT_TRUE(res);
  auto stats = nlohmann::json::parse(res->body);
  EXPECT_EQ(stats["by_status"]["503"], 1);
  EXPECT_EQ(stats["by_status"]["410"], 1);

  res = http.Post("/reset", "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_TRUE(emu_.Received().empty());
  r = c->Request("POST", "/3/device/" + std::string(64, 'd'), VoipHeaders(), "{}");
  EXPECT_EQ(r.status, 200) << "reset kept the dead token";
}

// ---------------------------------------------------------------------------------------------
// The executable

std::string RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

TEST_F(EmulatorTest, MakeJwtSubcommandTokensAreAccepted) {
  clock_.Set(absl::Now());  // the subcommand signs with the real time
  const std::string jwt =
      RunCommand(absl::StrCat(PUSHGATE_EMULATOR_BINARY, " make-jwt apns --p8 ", creds->dir,
                              "/apns-key.p8 --team ", kTeam, " --kid ", kKeyId));
  ASSERT_EQ(std::count(jwt.begin(), jwt.end(), '.'), 2) << "not a JWT: " << jwt;
  auto c = Connect();
  Headers h = VoipHeaders();
  SetHeader(h, "authorization", "bearer " + jwt);
  EXPECT_EQ(c->Request("POST", "/3/device/" + kToken, h, "{}").status, 200);

  const std::string assertion =
      RunCommand(absl::StrCat(PUSHGATE_EMULATOR_BINARY, " make-jwt oauth --key ", creds->dir,
                              "/fcm-sa.key --email ", kEmail, " --aud https://127.0.0.1/token"));
  H2Response r = TokenRequest(*c, assertion);
  EXPECT_EQ(r.status, 200) << r.body;
}

// The child `pid` exits within `timeout` (waited on a pidfd, readable when it exits) and is
// reaped into `status`; otherwise says it did not.
::testing::AssertionResult ExitsWithin(pid_t pid, absl::Duration timeout, int& status) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return ::testing::AssertionFailure() << "pidfd_open(" << pid << ") failed";
  pollfd pfd{pidfd, POLLIN, 0};
  poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  close(pidfd);
  if (waitpid(pid, &status, WNOHANG) == pid) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the emulator (pid " << pid << ") did not exit within "
                                       << absl::FormatDuration(timeout);
}

TEST(EmulatorBinaryTest, PrintsPortsServesAndExitsOnSigterm) {
  char tmpl[] = "/tmp/emulator-bin-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string ca_path = dir + "/ca.pem";
  int out_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    close(out_pipe[0]);
    execl(PUSHGATE_EMULATOR_BINARY, "pushgate-emulator", "--write-ca", ca_path.c_str(),
          "--apns-dead-token", std::string(64, 'e').c_str(), "--log-level", "warn", nullptr);
    _exit(127);
  }
  close(out_pipe[1]);
  FILE* out = fdopen(out_pipe[0], "r");
  char line[256] = "";
  ASSERT_NE(fgets(line, sizeof(line), out), nullptr) << "the emulator printed no EMULATOR line";
  std::string text(line);
  ASSERT_THAT(text, ::testing::StartsWith("EMULATOR h2=127.0.0.1:"));
  int h2_port = 0;
  int control_port = 0;
  ASSERT_EQ(
      std::sscanf(line, "EMULATOR h2=127.0.0.1:%d control=127.0.0.1:%d", &h2_port, &control_port),
      2)
      << text;

  H2TestClient c;
  H2ClientOptions o;
  o.port = h2_port;
  o.ca_pem = ReadFile(ca_path);
  ASSERT_TRUE(c.Connect(o).ok()) << "cannot connect trusting the written CA";
  // No APNs keys configured and no credential sent: authentication comes first.
  H2Response r = c.Request("POST", "/3/device/" + std::string(64, 'e'),
                           {{"apns-topic", "x.voip"}, {"apns-push-type", "voip"}}, "{}");
  EXPECT_EQ(r.status, 403) << r.body;
  httplib::Client http("127.0.0.1", control_port);
  auto res = http.Get("/stats");
  ASSERT_TRUE(res);
  EXPECT_EQ(nlohmann::json::parse(res->body)["requests"], 1);

  kill(pid, SIGTERM);
  int status = 0;
  if (::testing::AssertionResult exited = ExitsWithin(pid, absl::Seconds(5), status); !exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << exited.message() << " of SIGTERM";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  fclose(out);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pushgate::pusher::emulator
