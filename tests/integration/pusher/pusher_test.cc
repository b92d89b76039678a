// The pusher end to end in one process: PusherServer (real gRPC on loopback) -> HTTP/2 pools ->
// the APNs/FCM emulator over real TLS, with the credentials tests/fakes makes.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "pusher/emulator/emulator.h"
#include "pusher/service/server.h"
#include "pushgate/v1/pusher.grpc.pb.h"
#include "tests/fakes/fake_clock.h"

namespace pushgate::pusher {
namespace {

namespace emu = emulator;

constexpr char kTeam[] = "TEAM123456";
constexpr char kKeyId[] = "KEY1234567";
constexpr char kBundle[] = "com.example.phone";
constexpr char kCertBundle[] = "com.example.certapp";
constexpr char kProject[] = "pushgate-test";
const std::string kToken(64, 'a');

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Credentials are made once per test binary (openssl takes a moment).
struct Credentials {
  std::string dir;       // token key, FCM account, server cert
  std::string cert_dir;  // APNs client certificate for kCertBundle
};
const Credentials& Creds() {
  static Credentials* creds = [] {
    auto* c = new Credentials;
    char tmpl[] = "/tmp/pushgate-pusher-test-XXXXXX";
    c->dir = mkdtemp(tmpl);
    c->cert_dir = c->dir + "/cert";
    std::string cmd = absl::StrCat("tests/fakes/make-test-credentials.sh ", c->dir, " >/dev/null");
    if (std::system(cmd.c_str()) != 0) std::abort();
    cmd = absl::StrCat("APNS_BUNDLE=", kCertBundle, " tests/fakes/make-test-credentials.sh ",
                       c->cert_dir, " >/dev/null");
    if (std::system(cmd.c_str()) != 0) std::abort();
    return c;
  }();
  return *creds;
}

class PusherTest : public ::testing::Test {
 public:  // the verdict table (PusherVerdictTest) arranges its cases through these
  void StartEmulator(const Clock* clock = nullptr) {
    const Credentials& c = Creds();
    emu::EmulatorOptions o;
    o.tls_cert_pem = ReadFile(c.dir + "/server.pem");
    o.tls_key_pem = ReadFile(c.dir + "/server.key");
    o.client_ca_pem = ReadFile(c.cert_dir + "/client-ca.pem");
    o.apns_keys.push_back({kTeam, kKeyId, ReadFile(c.dir + "/apns-key.pub.pem")});
    o.fcm_accounts.push_back({absl::StrCat("pusher@", kProject, ".iam.gserviceaccount.com"),
                              ReadFile(c.dir + "/fcm-sa.pub.pem"), kProject});
    o.apns_topics[kTeam] = {kBundle};  // other topics of the team: 400 TopicDisallowed
    o.control_port = -1;
    o.clock = clock;
    auto ports = emulator_.Start(o);
    ASSERT_TRUE(ports.ok()) << ports.status();
    url_ = absl::StrCat("https://127.0.0.1:", ports->h2);
  }

  PusherConfig Config() {
    const Credentials& c = Creds();
    PusherConfig cfg;
    cfg.grpc.listen = "127.0.0.1:0";
    cfg.apns.token_keys = {absl::StrCat(kTeam, ":", kKeyId, ":", c.dir, "/apns-key.p8")};
    cfg.apns.certificates = {absl::StrCat(kCertBundle, ":", c.cert_dir,
                                          "/apns-client.pem:", c.cert_dir, "/apns-client.key")};
    cfg.apns.production_url = url_;
    cfg.apns.sandbox_url = url_;
    cfg.fcm.service_accounts = {c.dir + "/fcm-service-account.json"};
    cfg.fcm.base_url = url_;
    cfg.fcm.token_uri_override = url_ + "/token";
    cfg.http2.ca_file = c.dir + "/ca.pem";
    cfg.retry.initial_backoff = absl::Milliseconds(20);
    cfg.retry.max_backoff = absl::Milliseconds(200);
    cfg.admin.listen = "";
    return cfg;
  }

  void StartPusher(const PusherConfig& cfg, const Clock& clock = RealClock::Get()) {
    auto server = PusherServer::Create(cfg, clock);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials());
    stub_ = v1::Pusher::NewStub(channel_);
  }

  void SetUp() override {
    StartEmulator();
    StartPusher(Config());
  }

  emu::Emulator& emulator() { return emulator_; }

  // Restarts the pusher with Config() changed by `change`.
  void RestartPusherWith(const std::function<void(PusherConfig&)>& change) {
    server_->Shutdown(absl::Seconds(1));
    PusherConfig cfg = Config();
    change(cfg);
    StartPusher(cfg);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(5));
    server_.reset();  // before any clock a derived fixture owns goes away
    emulator_.Stop();
  }

  static v1::PushRequest Apns(const std::string& token = kToken, bool voip = true) {
    v1::PushRequest r;
    r.mutable_destination()->set_provider(v1::APNS);
    r.mutable_destination()->set_app(absl::StrCat(kTeam, ".", kBundle, voip ? ".voip" : ""));
    r.mutable_destination()->set_device_token(token);
    r.set_kind(voip ? v1::VOIP : v1::ALERT);
    r.set_call_id("call-1@example.org");
    r.set_caller_uri("sip:bob@example.org");
    r.set_badge(-1);
    return r;
  }
  static v1::PushRequest Fcm(const std::string& token = "fcm-token-1") {
    const std::string padded = token + "-0123456789abcdefghij";  // FCM tokens are long
    v1::PushRequest r;
    r.mutable_destination()->set_provider(v1::FCM);
    r.mutable_destination()->set_app(kProject);
    r.mutable_destination()->set_device_token(padded);
    r.set_kind(v1::DATA);
    r.set_priority(v1::PRIORITY_HIGH);
    r.set_call_id("call-2@example.org");
    r.set_badge(-1);
    return r;
  }

  grpc::Status Send(const v1::PushRequest& request, v1::PushResult* result,
                    absl::Duration timeout = absl::Seconds(10), const std::string& api_key = "") {
    grpc::ClientContext ctx;
    if (timeout != absl::InfiniteDuration()) {
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    }
    if (!api_key.empty()) ctx.AddMetadata("x-api-key", api_key);
    return stub_->Send(&ctx, request, result);
  }

  std::vector<emu::ReceivedRequest> ReceivedFor(emu::Provider provider) {
    std::vector<emu::ReceivedRequest> out;
    for (auto& r : emulator_.Received()) {
      if (r.provider == provider) out.push_back(r);
    }
    return out;
  }

  // Waits (on the emulator's event, no polling) until it received at least `n` requests for
  // `provider`; the failure says how many arrived.
  ::testing::AssertionResult WaitForRequests(emu::Provider provider, size_t n,
                                             absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time until = absl::Now() + timeout;
    for (;;) {
      const size_t total = emulator_.Stats()["requests"].get<size_t>();
      if (ReceivedFor(provider).size() >= n) return ::testing::AssertionSuccess();
      const absl::Duration left = until - absl::Now();
      if (left <= absl::ZeroDuration() || !emulator_.WaitForReceived(total + 1, left)) break;
    }
    return ::testing::AssertionFailure()
           << "the emulator received " << ReceivedFor(provider).size() << " of " << n << " "
           << emu::ProviderName(provider) << " requests within " << absl::FormatDuration(timeout);
  }

  emu::Emulator emulator_;
  std::string url_;
  std::unique_ptr<PusherServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Pusher::Stub> stub_;
  int port_ = 0;
};

std::string HeaderOf(const emu::ReceivedRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<absent>";
}

TEST_F(PusherTest, ApnsTokenAuthVoipPushIsAccepted) {
  v1::PushRequest req = Apns();
  req.set_request_id("0f9c3b2a-1111-4aaa-8bbb-123456789abc");
  v1::PushResult result;
  grpc::Status s = Send(req, &result);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(result.outcome(), v1::ACCEPTED) << result.reason();
  EXPECT_EQ(result.provider_status(), 200);
  EXPECT_EQ(result.request_id(), req.request_id());
  EXPECT_EQ(result.provider_message_id(), req.request_id()) << "apns-id is the request id";
  EXPECT_EQ(result.attempts(), 1);
  auto got = ReceivedFor(emu::Provider::kApns);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/3/device/" + kToken);
  EXPECT_EQ(got[0].topic, absl::StrCat(kBundle, ".voip"));
  EXPECT_EQ(HeaderOf(got[0], "apns-push-type"), "voip");
  EXPECT_EQ(HeaderOf(got[0], "apns-priority"), "10");
  EXPECT_NE(got[0].body.find("call-1@example.org"), std::string::npos) << got[0].body;
}

TEST_F(PusherTest, ApnsCertificateAuthIsAccepted) {
  v1::PushRequest req = Apns();
  req.mutable_destination()->set_app(absl::StrCat(kTeam, ".", kCertBundle));
  req.set_kind(v1::ALERT);
  req.set_alert_body("Incoming call");
  v1::PushResult result;
  ASSERT_TRUE(Send(req, &result).ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED) << result.reason();
  auto got = ReceivedFor(emu::Provider::kApns);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, kCertBundle);
  EXPECT_EQ(HeaderOf(got[0], "apns-push-type"), "alert");
}

TEST_F(PusherTest, FcmWithInProcessOAuthIsAccepted) {
  v1::PushResult result;
  grpc::Status s = Send(Fcm(), &result);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(result.outcome(), v1::ACCEPTED) << result.reason();
  EXPECT_TRUE(absl::StartsWith(result.provider_message_id(),
                               absl::StrCat("projects/", kProject, "/messages/")))
      << result.provider_message_id();
  EXPECT_EQ(ReceivedFor(emu::Provider::kOAuth).size(), 1u) << "one token for the project";
  auto sends = ReceivedFor(emu::Provider::kFcm);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_NE(sends[0].body.find("\"priority\":\"high\""), std::string::npos) << sends[0].body;
  // A second push reuses the cached access token.
  ASSERT_TRUE(Send(Fcm("fcm-token-2"), &result).ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED);
  EXPECT_EQ(ReceivedFor(emu::Provider::kOAuth).size(), 1u);
}

TEST_F(PusherTest, DeadTokensAreReportedAndNeverRetried) {
  emulator_.MarkDead(emu::Provider::kApns, kToken, absl::FromUnixMillis(1'700'000'000'123));
  emulator_.MarkDead(emu::Provider::kFcm, "fcm-dead-0123456789abcdefghij");
  v1::PushResult apns;
  ASSERT_TRUE(Send(Apns(), &apns).ok());
  EXPECT_EQ(apns.outcome(), v1::TOKEN_INVALID);
  EXPECT_EQ(apns.provider_status(), 410);
  EXPECT_EQ(apns.reason(), "Unregistered");
  EXPECT_EQ(apns.token_invalid_since().seconds(), 1'700'000'000);
  EXPECT_EQ(apns.attempts(), 1);
  v1::PushResult fcm;
  ASSERT_TRUE(Send(Fcm("fcm-dead"), &fcm).ok());
  EXPECT_EQ(fcm.outcome(), v1::TOKEN_INVALID);
  EXPECT_EQ(fcm.provider_status(), 404);
  EXPECT_EQ(fcm.reason(), "UNREGISTERED");
  EXPECT_EQ(fcm.attempts(), 1);
}

TEST_F(PusherTest, TooManyRequestsHonoursRetryAfterThenSucceeds) {
  emu::Faults f;
  f.fail_next = 1;
  f.fail_status = 429;
  f.retry_after_s = 1;
  emulator_.SetFaults(f);
  absl::Time start = absl::Now();
  v1::PushResult result;
  ASSERT_TRUE(Send(Apns(), &result).ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED) << result.reason();
  EXPECT_EQ(result.attempts(), 2);
  EXPECT_GE(absl::Now() - start, absl::Seconds(1)) << "Retry-After: 1 was not honoured";
}

TEST_F(PusherTest, ServiceUnavailableThenSuccess) {
  emu::Faults f;
  f.fail_next = 2;
  f.fail_status = 503;
  emulator_.SetFaults(f);
  v1::PushResult result;
  ASSERT_TRUE(Send(Fcm(), &result).ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED) << result.reason();
  EXPECT_EQ(result.attempts(), 3);
}

TEST_F(PusherTest, PersistentOverloadEndsInRetryLaterWithinTheDeadline) {
  emu::Faults f;
  f.fail_next = 1000;
  f.fail_status = 503;
  f.retry_after_s = 30;
  emulator_.SetFaults(f);
  v1::PushResult result;
  absl::Time start = absl::Now();
  ASSERT_TRUE(Send(Apns(), &result, absl::Seconds(3)).ok());
  EXPECT_EQ(result.outcome(), v1::RETRY_LATER);
  EXPECT_EQ(result.provider_status(), 503);
  EXPECT_EQ(result.retry_after().seconds(), 30);
  EXPECT_EQ(result.attempts(), 1) << "a 30 s Retry-After cannot fit a 3 s deadline";
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(PusherTest, DeadlineExceeded) {
  emu::Faults f;
  f.delay_ms = 2000;
  emulator_.SetFaults(f);
  v1::PushResult result;
  grpc::Status s = Send(Apns(), &result, absl::Milliseconds(400));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
}

TEST_F(PusherTest, InvalidRequestIsInvalidArgumentNamingTheField) {
  v1::PushRequest req = Apns("not-hex!");
  v1::PushResult result;
  grpc::Status s = Send(req, &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("device_token"), std::string::npos) << s.error_message();
  EXPECT_TRUE(ReceivedFor(emu::Provider::kApns).empty());
}

// On a stream a request error cannot fail the call: it comes back as a result with the id the
// client sent, next to the others' verdicts.
TEST_F(PusherTest, StreamAnswersRequestErrorsAsResultsWithTheirIds) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto stream = stub_->SendStream(&ctx);
  v1::PushRequest bad = Apns("not-hex!");
  bad.set_request_id("00000000-0000-4000-8000-00000000000a");
  v1::PushRequest unknown = Apns();
  unknown.mutable_destination()->set_app("OTHERTEAM1.org.other.app");
  unknown.set_request_id("00000000-0000-4000-8000-00000000000b");
  v1::PushRequest good = Apns();
  good.set_request_id("00000000-0000-4000-8000-00000000000c");
  v1::PushRequest no_id = Apns("not-hex-either");
  for (const auto* r : {&bad, &unknown, &good, &no_id}) ASSERT_TRUE(stream->Write(*r));
  stream->WritesDone();
  std::map<std::string, v1::PushResult> results;
  v1::PushResult result;
  while (stream->Read(&result)) results[result.request_id()] = result;
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[bad.request_id()].outcome(), v1::REJECTED);
  EXPECT_TRUE(absl::StartsWith(results[bad.request_id()].reason(), "INVALID_ARGUMENT: "))
      << results[bad.request_id()].reason();
  EXPECT_EQ(results[unknown.request_id()].outcome(), v1::NO_CREDENTIALS);
  EXPECT_EQ(results[good.request_id()].outcome(), v1::ACCEPTED);
  EXPECT_EQ(results[""].outcome(), v1::REJECTED) << "no id sent, none answered";
}

TEST_F(PusherTest, OversizedPayloadIsRejectedWithoutSending) {
  v1::PushRequest req = Apns(kToken, /*voip=*/false);
  req.set_alert_body(std::string(5000, 'x'));
  v1::PushResult result;
  ASSERT_TRUE(Send(req, &result).ok());
  EXPECT_EQ(result.outcome(), v1::REJECTED);
  EXPECT_TRUE(absl::StartsWith(result.reason(), "PayloadTooLarge: ")) << result.reason();
  EXPECT_EQ(result.attempts(), 0);
  EXPECT_TRUE(ReceivedFor(emu::Provider::kApns).empty());
}

// A display name in Latin-1 (legal in SIP) is not UTF-8: protobuf's parser refuses it without
// naming anything, and the generated handler answered a bare error. Now the field is named,
// on Send as a gRPC status and on a stream as that request's result.
TEST_F(PusherTest, InvalidUtf8IsInvalidArgumentNamingTheField) {
  v1::PushRequest req = Apns();
  req.set_caller_display_name("Jos\xE9");  // protobuf's C++ serializer sends it (and logs)
  v1::PushResult result;
  grpc::Status s = Send(req, &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(s.error_message(), "caller_display_name: is not valid UTF-8 (byte 3)");

  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto stream = stub_->SendStream(&ctx);
  req.set_request_id("00000000-0000-4000-8000-0000000000e1");
  v1::PushRequest good = Apns();
  good.set_request_id("00000000-0000-4000-8000-0000000000e2");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Write(good));
  stream->WritesDone();
  std::map<std::string, v1::PushResult> results;
  while (stream->Read(&result)) results[result.request_id()] = result;
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[req.request_id()].outcome(), v1::REJECTED);
  EXPECT_EQ(results[req.request_id()].reason(),
            "INVALID_ARGUMENT: caller_display_name: is not valid UTF-8 (byte 3)");
  EXPECT_EQ(results[good.request_id()].outcome(), v1::ACCEPTED) << "the stream goes on";
  EXPECT_EQ(ReceivedFor(emu::Provider::kApns).size(), 1u);
}

// A 100 KB APNs topic went to the provider five times and ended RETRY_LATER.
TEST_F(PusherTest, OversizedFieldIsInvalidArgumentWithoutSending) {
  v1::PushRequest req = Apns();
  req.mutable_destination()->set_app(
      absl::StrCat(kTeam, ".", std::string(size_t{100} * 1024, 'a')));
  v1::PushResult result;
  grpc::Status s = Send(req, &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "destination.app: the request is "))
      << s.error_message();
  req.mutable_destination()->set_app(absl::StrCat(kTeam, ".", std::string(300, 'a')));
  s = Send(req, &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(s.error_message(), "destination.app: is 311 bytes, at most 256");
  EXPECT_TRUE(ReceivedFor(emu::Provider::kApns).empty());
}

// A client that writes pushes but never reads its results: the pusher stops reading the stream
// once `stream_backlog` results wait, instead of buffering every result (500k unread results
// grew it by 120 MB). Once the client reads, every push is answered.
TEST_F(PusherTest, StreamWhoseResultsAreNotReadIsFlowControlled) {
  server_->Shutdown(absl::Seconds(5));
  PusherConfig cfg = Config();
  cfg.grpc.stream_backlog = 16;
  StartPusher(cfg);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);  // the client's window stays at 64 KiB
  auto stub = v1::Pusher::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(2)));
  auto stream = stub->SendStream(&ctx);
  constexpr int kPushes = 20000;  // ~2 MB of results: far beyond the client's window
  std::thread writer([&] {
    v1::PushRequest r = Apns();
    for (int i = 0; i < kPushes; ++i) {
      r.set_request_id(absl::StrFormat("00000000-0000-4000-8000-%012d", i));
      if (!stream->Write(r)) break;
    }
    stream->WritesDone();
  });
  // Nothing reads: the pushes the emulator receives level off (two readings 500 ms apart agree)
  // far below what was written.
  const auto sent = [&] { return emulator_.Stats()["requests"].get<size_t>(); };
  size_t level = sent();
  for (const absl::Time until = absl::Now() + absl::Seconds(20); absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(500));
    const size_t now = sent();
    if (now == level && now > 0) break;
    level = now;
  }
  EXPECT_LT(level, static_cast<size_t>(kPushes / 2))
      << "the pusher kept reading a stream whose results were not read";
  // The client reads: every push is sent and answered.
  int results = 0;
  v1::PushResult result;
  while (stream->Read(&result)) {
    EXPECT_EQ(result.outcome(), v1::ACCEPTED) << result.reason();
    ++results;
  }
  writer.join();
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(results, kPushes);
}

// Every verdict reaches the client as a PushResult, through the same mapping for Send and
// SendStream (issue 14 section 8: Send used to answer no credentials with FAILED_PRECONDITION).
enum class Method { kSend, kStream };

struct VerdictCase {
  const char* name;
  v1::Outcome outcome;
  std::function<v1::PushRequest(PusherTest*)> setup;  // arranges the verdict, returns the push
};

class PusherVerdictTest : public PusherTest,
                          public ::testing::WithParamInterface<std::tuple<VerdictCase, Method>> {
 protected:
  // The result of `request` through `method`, or the call's error.
  absl::StatusOr<v1::PushResult> Push(const v1::PushRequest& request, Method method) {
    if (method == Method::kSend) {
      v1::PushResult result;
      grpc::Status s = Send(request, &result, absl::Seconds(5));
      if (!s.ok()) return absl::UnknownError(absl::StrCat(s.error_code(), " ", s.error_message()));
      return result;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    auto stream = stub_->SendStream(&ctx);
    if (!stream->Write(request)) return absl::UnknownError("stream write failed");
    stream->WritesDone();
    v1::PushResult result;
    const bool got = stream->Read(&result);
    grpc::Status s = stream->Finish();
    if (!s.ok()) return absl::UnknownError(absl::StrCat(s.error_code(), " ", s.error_message()));
    if (!got) return absl::UnknownError("the stream ended without a result");
    return result;
  }
};

TEST_P(PusherVerdictTest, IsAResult) {
  const auto& [verdict, method] = GetParam();
  v1::PushRequest request = verdict.setup(this);
  request.set_request_id("00000000-0000-4000-8000-0000000000aa");
  absl::StatusOr<v1::PushResult> result = Push(request, method);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome(), verdict.outcome)
      << v1::Outcome_Name(result->outcome()) << " " << result->reason();
  EXPECT_EQ(result->request_id(), request.request_id());
}

std::vector<VerdictCase> Verdicts() {
  return {
      {"Accepted", v1::ACCEPTED, [](PusherTest*) { return PusherTest::Apns(); }},
      {"TokenInvalid", v1::TOKEN_INVALID,
       [](PusherTest* t) {
         t->emulator().MarkDead(emu::Provider::kFcm, "fcm-gone-0123456789abcdefghij");
         return PusherTest::Fcm("fcm-gone");
       }},
      {"RetryLater", v1::RETRY_LATER,
       [](PusherTest* t) {
         emu::Faults f;
         f.fail_next = 1000;
         f.fail_status = 503;
         f.retry_after_s = 30;  // beyond the push's deadline: no second attempt
         t->emulator().SetFaults(f);
         return PusherTest::Apns();
       }},
      {"Rejected", v1::REJECTED,
       [](PusherTest*) {
         v1::PushRequest r = PusherTest::Apns();  // the team's key may not push this topic
         r.mutable_destination()->set_app(absl::StrCat(kTeam, ".org.not.allowed.voip"));
         return r;
       }},
      {"AuthFailed", v1::AUTH_FAILED,
       [](PusherTest* t) {
         t->RestartPusherWith([](PusherConfig& cfg) {  // a key id APNs does not know
           cfg.apns.token_keys = {absl::StrCat(kTeam, ":UNKNOWNKEY:", Creds().dir, "/apns-key.p8")};
         });
         return PusherTest::Apns();
       }},
      {"NoCredentials", v1::NO_CREDENTIALS,
       [](PusherTest*) {
         v1::PushRequest r = PusherTest::Apns();
         r.mutable_destination()->set_app("OTHERTEAM1.org.other.app");
         return r;
       }},
  };
}

INSTANTIATE_TEST_SUITE_P(EveryOutcome, PusherVerdictTest,
                         ::testing::Combine(::testing::ValuesIn(Verdicts()),
                                            ::testing::Values(Method::kSend, Method::kStream)),
                         [](const auto& test) {
                           return absl::StrCat(
                               std::get<0>(test.param).name,
                               std::get<1>(test.param) == Method::kSend ? "Send" : "SendStream");
                         });

TEST_F(PusherTest, SameRequestIdPushesOnce) {
  v1::PushRequest req = Apns();
  req.set_request_id("7d444840-9dc0-11d1-b245-5ffdce74fad2");
  v1::PushResult first, second;
  ASSERT_TRUE(Send(req, &first).ok());
  ASSERT_TRUE(Send(req, &second).ok());
  EXPECT_EQ(first.outcome(), v1::ACCEPTED);
  EXPECT_EQ(second.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(ReceivedFor(emu::Provider::kApns).size(), 1u);
}

TEST_F(PusherTest, SameRequestIdInFlightOnAStreamPushesOnceAndAnswersEveryCopy) {
  emu::Faults f;
  f.delay_ms = 300;  // the first send is still in flight when its copies arrive
  emulator_.SetFaults(f);
  constexpr int kCopies = 5;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto stream = stub_->SendStream(&ctx);
  v1::PushRequest req = Apns();
  req.set_request_id("5b0e6a7c-3f1d-4e2a-9c8b-7a6d5e4f3a2b");
  v1::PushRequest other = Apns(std::string(64, 'c'));
  other.set_request_id("5b0e6a7c-3f1d-4e2a-9c8b-000000000001");
  for (int i = 0; i < kCopies; ++i) ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Write(other));
  stream->WritesDone();
  std::vector<v1::PushResult> results;
  v1::PushResult result;
  while (stream->Read(&result)) results.push_back(result);
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(results.size(), static_cast<size_t>(kCopies + 1)) << "every copy is answered";
  int copies = 0;
  std::string first;
  for (const auto& r : results) {
    EXPECT_EQ(r.outcome(), v1::ACCEPTED) << r.ShortDebugString();
    if (r.request_id() != req.request_id()) continue;
    ++copies;
    if (first.empty()) first = r.SerializeAsString();
    EXPECT_EQ(r.SerializeAsString(), first) << "every copy gets the first send's verdict";
  }
  EXPECT_EQ(copies, kCopies);
  EXPECT_EQ(ReceivedFor(emu::Provider::kApns).size(), 2u) << "the copies were pushed again";
}

TEST_F(PusherTest, StreamWithGoawayLosesNoPushAndSendsNoneTwice) {
  emu::Faults f;
  f.goaway_after_streams = 7;
  f.goaway_limit = 3;
  emulator_.SetFaults(f);
  constexpr int kPushes = 60;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto stream = stub_->SendStream(&ctx);
  for (int i = 0; i < kPushes; ++i) {
    v1::PushRequest req = Apns(absl::StrCat(std::string(60, 'b'), absl::Dec(1000 + i)));
    req.set_request_id(absl::StrCat("00000000-0000-4000-8000-", absl::Dec(100000000000 + i)));
    ASSERT_TRUE(stream->Write(req));
  }
  stream->WritesDone();
  std::map<std::string, v1::Outcome> outcomes;
  v1::PushResult result;
  while (stream->Read(&result)) outcomes[result.request_id()] = result.outcome();
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(outcomes.size(), static_cast<size_t>(kPushes));
  for (const auto& [id, outcome] : outcomes) EXPECT_EQ(outcome, v1::ACCEPTED) << id;
  std::map<std::string, int> accepted_per_token;
  for (const auto& r : ReceivedFor(emu::Provider::kApns)) {
    if (r.status == 200) ++accepted_per_token[r.token];
  }
  EXPECT_EQ(accepted_per_token.size(), static_cast<size_t>(kPushes));
  for (const auto& [token, n] : accepted_per_token) EXPECT_EQ(n, 1) << token << " pushed twice";
}

// main() shuts down from the signal thread and destroys the server when Wait() returns: Wait()
// must not return before Shutdown() is over (the drain of pushes still at the provider
// included), or the server is destroyed under the draining thread (a SIGSEGV on SIGTERM under
// load, an AddressSanitizer use-after-free here).
TEST_F(PusherTest, WaitReturnsOnlyAfterShutdownAndDrainCompleted) {
  emu::Faults f;
  f.delay_ms = 400;  // pushes are still at the provider when the RPCs are cancelled
  emulator_.SetFaults(f);
  grpc::ClientContext ctx;
  auto stream = stub_->SendStream(&ctx);
  for (int i = 0; i < 20; ++i) {
    v1::PushRequest req = Apns(absl::StrCat(std::string(60, 'd'), absl::Dec(1000 + i)));
    ASSERT_TRUE(stream->Write(req));
  }
  ASSERT_TRUE(WaitForRequests(emu::Provider::kApns, 1));
  std::atomic<bool> shutdown_returned{false};
  std::thread signal_thread([&] {
    // A drain shorter than the provider's delay: gRPC gives up on the RPCs first, the pool
    // drain then waits for the pushes still at the emulator.
    server_->Shutdown(absl::Milliseconds(100));
    shutdown_returned = true;
  });
  server_->Wait();
  server_.reset();  // what main() does next
  signal_thread.join();
  EXPECT_TRUE(shutdown_returned.load());
  ctx.TryCancel();
  v1::PushResult result;
  while (stream->Read(&result)) {
  }
  stream->Finish();
}

TEST_F(PusherTest, FullQueueIsResourceExhausted) {
  server_->Shutdown(absl::Seconds(1));
  PusherConfig cfg = Config();
  cfg.http2.max_connections_per_pool = 1;
  cfg.http2.max_queue_per_pool = 1;
  emu::Faults f;
  f.delay_ms = 300;
  f.max_concurrent_streams = 1;
  emulator_.SetFaults(f);
  StartPusher(cfg);
  constexpr int kPushes = 8;
  grpc::ClientContext ctx;
  auto stream = stub_->SendStream(&ctx);
  for (int i = 0; i < kPushes; ++i) ASSERT_TRUE(stream->Write(Fcm(absl::StrCat("t", i))));
  stream->WritesDone();
  int exhausted = 0, accepted = 0;
  v1::PushResult result;
  while (stream->Read(&result)) {
    if (result.outcome() == v1::ACCEPTED) ++accepted;
    if (result.outcome() == v1::RETRY_LATER &&
        absl::StrContains(result.reason(), "RESOURCE_EXHAUSTED")) {
      ++exhausted;
    }
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_GT(exhausted, 0);
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(exhausted + accepted, kPushes);
}

TEST_F(PusherTest, BadCredentialAtStartKeepsServingAndReportsNotServing) {
  server_->Shutdown(absl::Seconds(1));
  PusherConfig cfg = Config();
  cfg.apns.token_keys.push_back("BADTEAM000:KEY0000000:/nonexistent/AuthKey.p8");
  StartPusher(cfg);
  EXPECT_NE(server_->Problems().find("/nonexistent/AuthKey.p8"), std::string::npos)
      << server_->Problems();
  v1::PushRequest req = Apns();
  req.mutable_destination()->set_app("BADTEAM000.com.example.phone");
  v1::PushResult result;
  ASSERT_TRUE(Send(req, &result).ok());
  EXPECT_EQ(result.outcome(), v1::AUTH_FAILED);
  EXPECT_NE(result.reason().find("cannot read"), std::string::npos) << result.reason();
  // The good credential still works.
  ASSERT_TRUE(Send(Apns(), &result).ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED);

  auto health = grpc::health::v1::Health::NewStub(channel_);
  auto check = [&](const std::string& service) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest hreq;
    hreq.set_service(service);
    grpc::health::v1::HealthCheckResponse hres;
    grpc::Status s = health->Check(&ctx, hreq, &hres);
    return s.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(hres.status())
                  : s.error_message();
  };
  EXPECT_EQ(check(""), "SERVING");
  EXPECT_EQ(check("apns:BADTEAM000"), "NOT_SERVING");
  EXPECT_EQ(check(absl::StrCat("apns:", kTeam)), "SERVING");
}

TEST_F(PusherTest, ApiKeysRestrictApps) {
  server_->Shutdown(absl::Seconds(1));
  std::string keys = Creds().dir + "/api-keys";
  std::ofstream(keys) << "# test clients\nproxy proxy-key-0123456789 " << kBundle
                      << "\nall everything-key-0123456789 *\n";
  PusherConfig cfg = Config();
  cfg.grpc.api_keys_file = keys;
  StartPusher(cfg);
  v1::PushResult result;
  EXPECT_EQ(Send(Apns(), &result).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Send(Apns(), &result, absl::Seconds(5), "wrong-key-0123456789").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(Send(Apns(), &result, absl::Seconds(5), "proxy-key-0123456789").ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED);
  grpc::Status s = Send(Fcm(), &result, absl::Seconds(5), "proxy-key-0123456789");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), absl::StrCat("client 'proxy' may not push to app '", kProject, "'"));
  ASSERT_TRUE(Send(Fcm(), &result, absl::Seconds(5), "everything-key-0123456789").ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED);
}

// APNs refuses provider tokens older than an hour: with a 40-minute refresh age, a push an hour
// after the first still goes through because the pusher signed a new token at 40 minutes.
class PusherClockTest : public PusherTest {
 protected:
  void SetUp() override {}  // the test starts both sides on its fake clock
  FakeClock clock_{absl::Now()};
};

TEST_F(PusherClockTest, ProviderTokenIsRefreshedBeforeApnsExpiresIt) {
  StartEmulator(&clock_);
  PusherConfig cfg = Config();
  cfg.apns.token_refresh_age = absl::Minutes(40);
  StartPusher(cfg, clock_);
  v1::PushResult result;
  ASSERT_TRUE(Send(Apns(), &result, absl::InfiniteDuration()).ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED) << result.reason();
  clock_.Advance(absl::Minutes(61));
  ASSERT_TRUE(Send(Apns(), &result, absl::InfiniteDuration()).ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED) << result.reason();
}

}  // namespace
}  // namespace pushgate::pusher
