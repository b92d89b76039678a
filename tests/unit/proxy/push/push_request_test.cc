#include "proxy/push/push_request.h"

#include <gtest/gtest.h>

namespace pushgate::proxy {
namespace {

Binding WithPush(PushParams::Provider provider, bool voip, std::string remote = "") {
  Binding b;
  PushParams p;
  p.provider = provider;
  p.prid = provider == PushParams::kFcm ? "fcm-token" : "aabbccdd";
  p.remote_prid = std::move(remote);
  p.param = provider == PushParams::kFcm ? "my-project" : "ABCD123456.org.example.app.voip";
  p.voip = voip;
  b.push = p;
  return b;
}

const CallInfo kCall{"c1@host", "sip:bob@example.org", "Bob"};

TEST(BuildPushRequest, VoipGoesToTheVoipTokenWithCallFields) {
  v1::PushRequest r = BuildPushRequest(WithPush(PushParams::kApns, true), PushKind::kVoip, kCall,
                                       absl::Seconds(90));
  EXPECT_EQ(r.destination().provider(), v1::APNS);
  EXPECT_EQ(r.destination().app(), "ABCD123456.org.example.app.voip");
  EXPECT_EQ(r.destination().device_token(), "aabbccdd");
  EXPECT_EQ(r.kind(), v1::VOIP);
  EXPECT_EQ(r.call_id(), "c1@host");
  EXPECT_EQ(r.caller_uri(), "sip:bob@example.org");
  EXPECT_EQ(r.caller_display_name(), "Bob");
  EXPECT_EQ(r.time_to_live().seconds(), 90);
  EXPECT_TRUE(r.request_id().empty()) << "the pusher assigns one";
}

TEST(BuildPushRequest, Latin1DisplayNameStillMakesAValidMessage) {
  // "José Müller" in Latin-1 (legal in SIP): protobuf refused the request, the push was lost.
  const CallInfo latin1{"c1@host", "sip:jos\xE9@example.org", "Jos\xE9 M\xFCller"};
  v1::PushRequest r = BuildPushRequest(WithPush(PushParams::kApns, true), PushKind::kVoip, latin1,
                                       absl::Seconds(90));
  EXPECT_EQ(r.caller_display_name(), "Jos\xEF\xBF\xBD M\xEF\xBF\xBDller");
  EXPECT_EQ(r.caller_uri(), "sip:jos\xEF\xBF\xBD@example.org");
  std::string wire;
  ASSERT_TRUE(r.SerializeToString(&wire));
  v1::PushRequest parsed;
  EXPECT_TRUE(parsed.ParseFromString(wire)) << "the pusher could not read the request";
  EXPECT_EQ(parsed.caller_display_name(), r.caller_display_name());
}

TEST(BuildPushRequest, AndroidGetsHighPriorityData) {
  v1::PushRequest r = BuildPushRequest(WithPush(PushParams::kFcm, false), PushKind::kData, kCall,
                                       absl::Seconds(30));
  EXPECT_EQ(r.destination().provider(), v1::FCM);
  EXPECT_EQ(r.destination().app(), "my-project");
  EXPECT_EQ(r.kind(), v1::DATA);
  EXPECT_EQ(r.priority(), v1::PRIORITY_HIGH);
}

TEST(BuildPushRequest, MissedCallAlertUsesTheRemoteTokenWhenThereIsOne) {
  v1::PushRequest r = BuildPushRequest(WithPush(PushParams::kApnsSandbox, true, "eeff0011"),
                                       PushKind::kMissedCallAlert, kCall, absl::Seconds(90));
  EXPECT_EQ(r.destination().provider(), v1::APNS_SANDBOX);
  EXPECT_EQ(r.destination().device_token(), "eeff0011");
  EXPECT_EQ(r.kind(), v1::ALERT);
  EXPECT_EQ(r.loc_key(), "MISSED_CALL");
}

TEST(BuildPushRequest, LegacyCallStringOverridesTheAlertKey) {
  Binding b = WithPush(PushParams::kApns, false);
  b.push->call_str = "CALL_FROM_%s";
  v1::PushRequest r = BuildPushRequest(b, PushKind::kAlert, kCall, absl::Seconds(90));
  EXPECT_EQ(r.loc_key(), "CALL_FROM_%s");
  EXPECT_EQ(r.destination().device_token(), "aabbccdd");
}

TEST(BuildPushRequest, LegacyAppleAppIdGetsTheConfiguredTeam) {
  auto parsed = ParsePushParams(*ParseUri(
      "sip:alice@192.0.2.1;pn-type=apple;pn-tok=aabbccdd;app-id=org.example.app.voip.dev"));
  ASSERT_TRUE(parsed.ok() && parsed->has_value()) << parsed.status();
  Binding b;
  b.push = **parsed;
  v1::PushRequest r = BuildPushRequest(b, PushKind::kVoip, kCall, absl::Seconds(90), "ABCD123456");
  EXPECT_EQ(r.destination().provider(), v1::APNS_SANDBOX);
  EXPECT_EQ(r.destination().app(), "ABCD123456.org.example.app.voip");
  EXPECT_EQ(r.destination().device_token(), "aabbccdd");
  // Without a configured team the app-id goes as is; RFC 8599 parameters are never rewritten.
  EXPECT_EQ(BuildPushRequest(b, PushKind::kVoip, kCall, absl::Seconds(90)).destination().app(),
            "org.example.app.voip.dev");
  EXPECT_EQ(BuildPushRequest(WithPush(PushParams::kApns, true), PushKind::kVoip, kCall,
                             absl::Seconds(90), "ZZZZ999999")
                .destination()
                .app(),
            "ABCD123456.org.example.app.voip");
  auto fcm = ParsePushParams(
      *ParseUri("sip:bob@192.0.2.2;pn-type=firebase;pn-tok=fcm-token-1;app-id=123456789"));
  ASSERT_TRUE(fcm.ok() && fcm->has_value()) << fcm.status();
  Binding f;
  f.push = **fcm;
  EXPECT_EQ(BuildPushRequest(f, PushKind::kData, kCall, absl::Seconds(30), "ABCD123456")
                .destination()
                .app(),
            "123456789");
}

TEST(PushVerdictOf, OnlyAcceptedCountsAndOnlyTokenInvalidRemoves) {
  struct Case {
    absl::StatusOr<v1::PushResult> result;
    Fork::PushOutcome outcome;
    std::string label;
  };
  auto result = [](v1::Outcome outcome) {
    v1::PushResult r;
    r.set_outcome(outcome);
    return r;
  };
  const Case cases[] = {
      {result(v1::ACCEPTED), Fork::PushOutcome::kAccepted, "accepted"},
      {result(v1::TOKEN_INVALID), Fork::PushOutcome::kTokenInvalid, "token_invalid"},
      {result(v1::RETRY_LATER), Fork::PushOutcome::kFailed, "failed"},
      {result(v1::REJECTED), Fork::PushOutcome::kFailed, "failed"},
      {result(v1::AUTH_FAILED), Fork::PushOutcome::kFailed, "failed"},
      {result(v1::NO_CREDENTIALS), Fork::PushOutcome::kFailed, "failed"},
      {result(v1::OUTCOME_UNSPECIFIED), Fork::PushOutcome::kFailed, "failed"},
      {absl::UnavailableError("pusher down"), Fork::PushOutcome::kFailed, "error"},
  };
  for (const Case& c : cases) {
    PushVerdict v = PushVerdictOf(c.result);
    EXPECT_EQ(v.outcome, c.outcome) << c.label;
    EXPECT_EQ(v.label, c.label);
  }
}

TEST(CallPushTtl, TheRestOfTheCallAtLeastOneSecond) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  EXPECT_EQ(CallPushTtl(t0, absl::Seconds(90), t0), absl::Seconds(90));
  EXPECT_EQ(CallPushTtl(t0, absl::Seconds(90), t0 + absl::Seconds(30)), absl::Seconds(60));
  EXPECT_EQ(CallPushTtl(t0, absl::Seconds(90), t0 + absl::Milliseconds(89500)), absl::Seconds(1));
  EXPECT_EQ(CallPushTtl(t0, absl::Seconds(90), t0 + absl::Seconds(120)), absl::Seconds(1));
}

}  // namespace
}  // namespace pushgate::proxy
