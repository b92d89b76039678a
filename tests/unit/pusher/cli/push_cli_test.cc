#include "pusher/cli/push_cli.h"

#include <gtest/gtest.h>

namespace pushgate::pusher::cli {
namespace {

TEST(PushCli, ParsesAFullPush) {
  auto o = ParseArgs({"--target",   "dns:///pusher:50061",
                      "--provider", "apns",
                      "--param",    "ABCD123456.com.example.phone.voip",
                      "--token",    "aabbcc",
                      "--kind",     "voip",
                      "--call-id",  "c1",
                      "--caller",   "sip:bob@example.org",
                      "--data",     "k=v=w",
                      "--ttl",      "30s",
                      "--api-key",  "secret",
                      "--timeout",  "2s"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->target, "dns:///pusher:50061");
  EXPECT_EQ(o->request.destination().provider(), v1::APNS);
  EXPECT_EQ(o->request.destination().app(), "ABCD123456.com.example.phone.voip");
  EXPECT_EQ(o->request.destination().device_token(), "aabbcc");
  EXPECT_EQ(o->request.kind(), v1::VOIP);
  EXPECT_EQ(o->request.call_id(), "c1");
  EXPECT_EQ(o->request.data().at("k"), "v=w");
  EXPECT_EQ(o->request.time_to_live().seconds(), 30);
  EXPECT_EQ(o->api_key, "secret");
  EXPECT_EQ(o->timeout, absl::Seconds(2));
  EXPECT_EQ(o->request.badge(), -1) << "badge left unchanged unless asked";
}

TEST(PushCli, HealthNeedsNoDestination) {
  auto o = ParseArgs({"--health", "pushgate.v1.Pusher", "--tls", "--ca", "/tmp/ca.pem"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->health);
  EXPECT_EQ(o->health_service, "pushgate.v1.Pusher");
  EXPECT_TRUE(o->tls);
}

struct BadArgs {
  std::vector<std::string> args;
  std::string message;
};

class PushCliErrors : public ::testing::TestWithParam<BadArgs> {};

TEST_P(PushCliErrors, SayWhatIsWrong) {
  auto o = ParseArgs(GetParam().args);
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(o.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    All, PushCliErrors,
    ::testing::Values(
        BadArgs{{"--param", "p", "--token", "t"}, "--provider is required"},
        BadArgs{{"--provider", "fcm", "--token", "t"}, "--param is required"},
        BadArgs{{"--provider", "fcm", "--param", "p"}, "--token is required"},
        BadArgs{{"--provider", "hms"}, "--provider: 'hms' is not one of apns, apns_sandbox, fcm"},
        BadArgs{{"--kind", "loud"}, "--kind: 'loud' is not one of voip, alert, background, data"},
        BadArgs{{"--ttl", "soon"}, "--ttl: 'soon' is not a duration (e.g. 30s)"},
        BadArgs{{"--badge", "x"}, "--badge: 'x' is not an integer"},
        BadArgs{{"--data", "novalue"}, "--data: 'novalue' is not KEY=VALUE"},
        BadArgs{{"--token"}, "--token needs a value"},
        BadArgs{{"--frobnicate"}, "unknown option '--frobnicate'"}));

TEST(PushCli, FormatsVerdict) {
  v1::PushResult r;
  r.set_request_id("id1");
  r.set_outcome(v1::TOKEN_INVALID);
  r.set_provider_status(410);
  r.set_reason("Unregistered");
  r.set_attempts(1);
  EXPECT_EQ(FormatResult(r, false),
            "outcome: TOKEN_INVALID\nrequest_id: id1\nprovider_status: 410\nreason: "
            "Unregistered\nattempts: 1\n");
  std::string json = FormatResult(r, true);
  EXPECT_NE(json.find("\"outcome\":\"TOKEN_INVALID\""), std::string::npos) << json;
}

}  // namespace
}  // namespace pushgate::pusher::cli
