#include "proxy/core/fork.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <vector>

namespace pushgate::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Type = ForkAction::Type;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

ForkAction A(Type type, BranchId branch = 0, int status = 0, std::string reason = "") {
  return ForkAction{type, branch, status, std::move(reason)};
}
// Our own answer to the caller (its code and reason: OutcomesTest).
ForkAction Answer(Outcome outcome) {
  ForkAction a{Type::kRespond};
  a.outcome = outcome;
  return a;
}
ForkAction Push(BranchId branch, PushKind kind) {
  ForkAction a{Type::kSendPush, branch};
  a.push_kind = kind;
  return a;
}
const ForkAction k110 = Answer(Outcome::kPushSent);
const ForkAction kDone = A(Type::kFinished);

// The push token derives from `device` (default: the host), so the same device can come back
// from another address.
Binding Device(const std::string& host, std::optional<PushParams::Provider> provider = {},
               bool voip = false, const std::string& instance = "", std::string device = "") {
  if (device.empty()) device = host;
  Binding b;
  b.aor = "sip:alice@example.org";
  b.contact.scheme = "sip";
  b.contact.user = "alice";
  b.contact.host = host;
  b.contact.port = 5060;
  b.instance_id = instance;
  b.expires_at = kT0 + absl::Hours(1);
  if (provider) {
    PushParams p;
    p.provider = *provider;
    p.provider_name = *provider == PushParams::kFcm ? "fcm" : "apns";
    p.prid = *provider == PushParams::kFcm ? "fcmtoken-" + device : "a1b2c3d4e5f60718" + device;
    p.param = *provider == PushParams::kFcm ? "my-project" : "ABCD123456.org.example.app";
    p.voip = voip;
    if (voip) p.param += ".voip";
    b.push = p;
  }
  return b;
}
Binding IosVoip(const std::string& host, const std::string& instance = "",
                const std::string& device = "") {
  return Device(host, PushParams::kApns, true, instance, device);
}
Binding IosAlert(const std::string& host) { return Device(host, PushParams::kApns, false); }
Binding Android(const std::string& host) { return Device(host, PushParams::kFcm); }

ForkPolicy Policy() {
  ForkPolicy p;
  p.call_timeout = absl::Seconds(90);
  p.push_delay_voip = absl::ZeroDuration();
  p.push_delay_other = absl::Seconds(3);
  return p;
}

TEST(PushKindFor, ChoosesPerProvider) {
  EXPECT_EQ(PushKindFor(IosVoip("h")), PushKind::kVoip);
  EXPECT_EQ(PushKindFor(IosAlert("h")), PushKind::kAlert);
  EXPECT_EQ(PushKindFor(Android("h")), PushKind::kData);
  EXPECT_EQ(PushKindFor(Device("h")), std::nullopt);
  Binding query = IosVoip("h");
  query.push->prid.clear();  // RFC 8599 capability query: nothing to push to
  EXPECT_EQ(PushKindFor(query), std::nullopt);
  Binding other = Device("h", PushParams::kOther);
  EXPECT_EQ(PushKindFor(other), std::nullopt);
}

TEST(Fork, NoBindingIs404) {
  Fork f(Policy(), kT0);
  EXPECT_THAT(f.Start({}, {}, kT0), ElementsAre(Answer(Outcome::kNoBinding), kDone));
  EXPECT_TRUE(f.finished());
}

TEST(Fork, ExpiredBindingsAreSkipped) {
  Fork f(Policy(), kT0);
  Binding old = Device("10.0.0.1");
  old.expires_at = kT0 - absl::Seconds(1);
  EXPECT_THAT(f.Start({old}, {true}, kT0), ElementsAre(Answer(Outcome::kNoBinding), kDone));
}

TEST(Fork, BindingsButNoneReachableNorPushableIs480) {
  Fork f(Policy(), kT0);
  EXPECT_THAT(f.Start({Device("10.0.0.1"), Device("10.0.0.2")}, {false, false}, kT0),
              ElementsAre(Answer(Outcome::kCallUnavailable), kDone));
}

TEST(Fork, IosVoipIsPushedAtOnceWith110) {
  Fork f(Policy(), kT0);
  EXPECT_THAT(f.Start({IosVoip("10.0.0.1")}, {true}, kT0),
              ElementsAre(A(Type::kSendRequest, 1), Push(1, PushKind::kVoip), k110));
  EXPECT_EQ(f.NextWakeup(), kT0 + absl::Seconds(90));
}

TEST(Fork, UnreachableBranchIsPushedAtOnceWhateverTheDelay) {
  Fork f(Policy(), kT0);
  EXPECT_THAT(f.Start({Android("10.0.0.1")}, {false}, kT0),
              ElementsAre(Push(1, PushKind::kData), k110));
}

TEST(Fork, AndroidPushedAfterDelayUnlessItRings) {
  Fork f(Policy(), kT0);
  EXPECT_THAT(f.Start({Android("10.0.0.1"), Android("10.0.0.2")}, {true, true}, kT0),
              ElementsAre(A(Type::kSendRequest, 1), A(Type::kSendRequest, 2)));
  EXPECT_EQ(f.NextWakeup(), kT0 + absl::Seconds(3));
  // Branch 1 rings before the delay: its push is cancelled (Flexisip #255 did not do this).
  EXPECT_THAT(f.OnResponse(1, 180, kT0 + absl::Seconds(1)),
              ElementsAre(A(Type::kForwardProvisional, 1, 180)));
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(3)), ElementsAre(Push(2, PushKind::kData), k110));
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(4)), IsEmpty());
}

TEST(Fork, HundredTryingDoesNotCancelThePush) {
  Fork f(Policy(), kT0);
  f.Start({Android("10.0.0.1")}, {true}, kT0);
  EXPECT_THAT(f.OnResponse(1, 100, kT0 + absl::Seconds(1)), IsEmpty());
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(3)), ElementsAre(Push(1, PushKind::kData), k110));
}

TEST(Fork, OnlyOne110ForSeveralPushes) {
  Fork f(Policy(), kT0);
  EXPECT_THAT(f.Start({IosVoip("10.0.0.1"), IosVoip("10.0.0.2")}, {true, true}, kT0),
              ElementsAre(A(Type::kSendRequest, 1), A(Type::kSendRequest, 2),
                          Push(1, PushKind::kVoip), k110, Push(2, PushKind::kVoip)));
}

TEST(Fork, No110WhenDisabled) {
  ForkPolicy p = Policy();
  p.send_110_push_sent = false;
  Fork f(p, kT0);
  EXPECT_THAT(f.Start({IosVoip("10.0.0.1")}, {true}, kT0),
              ElementsAre(A(Type::kSendRequest, 1), Push(1, PushKind::kVoip)));
}

TEST(Fork, TwoDevicesOneAnswersTheOtherIsCancelledWithReason) {
  Fork f(Policy(), kT0);
  f.Start({Device("10.0.0.1"), Device("10.0.0.2")}, {true, true}, kT0);
  f.OnResponse(1, 180, kT0);
  f.OnResponse(2, 180, kT0);
  EXPECT_THAT(f.OnResponse(2, 200, kT0 + absl::Seconds(5)),
              ElementsAre(A(Type::kForwardFinal, 2, 200),
                          A(Type::kCancelBranch, 1, 0, kCompletedElsewhere), kDone));
  EXPECT_TRUE(f.answered());
  // The winner's retransmitted 2xx goes on; a late 2xx from the other branch that crossed our
  // CANCEL cannot reach the caller any more: released (ACK + BYE), also when retransmitted.
  EXPECT_THAT(f.OnResponse(2, 200, kT0 + absl::Seconds(6)),
              ElementsAre(A(Type::kForwardFinal, 2, 200)));
  EXPECT_THAT(f.OnResponse(1, 200, kT0 + absl::Seconds(6)),
              ElementsAre(A(Type::kReleaseAnswer, 1, 200)));
  EXPECT_THAT(f.OnResponse(1, 200, kT0 + absl::Seconds(7)),
              ElementsAre(A(Type::kReleaseAnswer, 1, 200)));
  EXPECT_THAT(f.OnResponse(1, 487, kT0 + absl::Seconds(6)), IsEmpty());
}

// Which 2xx reach the caller and which the gateway must end itself (ACK, then BYE).
TEST(Fork, TwoHundredsTheCallerCannotTakeAreReleased) {
  struct Case {
    const char* name;
    std::function<void(Fork&)> before;  // after Start of one awake plain device (branch 1)
    std::vector<ForkAction> expected;
  };
  const std::vector<Case> cases = {
      {"caller cancelled while ringing",
       [](Fork& f) {
         f.OnResponse(1, 180, kT0);
         f.OnCallerCancel(kT0);
       },
       {A(Type::kReleaseAnswer, 1, 200)}},
      {"caller cancelled before any response",
       [](Fork& f) { f.OnCallerCancel(kT0); },
       {A(Type::kReleaseAnswer, 1, 200)}},
      {"call timed out",
       [](Fork& f) { f.OnTimer(kT0 + absl::Seconds(90)); },
       {A(Type::kReleaseAnswer, 1, 200)}},
      {"nothing happened: the first 2xx is the answer",
       [](Fork&) {},
       {A(Type::kForwardFinal, 1, 200), kDone}},
  };
  for (const Case& c : cases) {
    Fork f(Policy(), kT0);
    f.Start({Device("10.0.0.1")}, {true}, kT0);
    c.before(f);
    EXPECT_EQ(f.OnResponse(1, 200, kT0 + absl::Seconds(91)), c.expected) << c.name;
  }
}

TEST(Fork, VoipPhoneAnsweringTheCancelledCallAfterWakingIsReleased) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1", "<urn:uuid:1>")}, {false}, kT0);
  f.OnCallerCancel(kT0 + absl::Seconds(1));
  EXPECT_THAT(f.OnRegistration(IosVoip("10.0.0.2", "<urn:uuid:1>"), true, kT0 + absl::Seconds(2)),
              ElementsAre(A(Type::kSendRequest, 2), A(Type::kCancelBranch, 2), kDone));
  EXPECT_THAT(f.OnResponse(2, 200, kT0 + absl::Seconds(3)),
              ElementsAre(A(Type::kReleaseAnswer, 2, 200)));
}

// A call to one masqueraded contact is for that phone: the AOR's other phone registering during
// the call gets nothing, the phone itself is still called late at its new contact.
TEST(Fork, DeviceScopeTakesOnlyItsOwnDevicesRegistrations) {
  Fork f(Policy(), kT0);
  EXPECT_THAT(f.Start({IosVoip("10.0.0.1", "<urn:uuid:1>")}, {false}, kT0, ForkScope::kDevice),
              ElementsAre(Push(1, PushKind::kVoip), k110));
  EXPECT_EQ(f.scope(), ForkScope::kDevice);
  EXPECT_THAT(f.OnRegistration(IosVoip("10.0.0.2", "<urn:uuid:2>"), true, kT0 + absl::Seconds(1)),
              IsEmpty())
      << "another phone of the AOR";
  EXPECT_THAT(f.OnRegistration(Device("10.0.0.3"), true, kT0 + absl::Seconds(1)), IsEmpty());
  EXPECT_THAT(f.OnRegistration(IosVoip("10.0.0.9", "<urn:uuid:1>"), true, kT0 + absl::Seconds(2)),
              ElementsAre(A(Type::kSendRequest, 2)))
      << "the phone itself, woken, at its new contact";
  EXPECT_EQ(f.branches().size(), 2u);
}

TEST(Fork, AorScopeStillCallsANewDevice) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1", "<urn:uuid:1>")}, {false}, kT0);
  EXPECT_THAT(f.OnRegistration(IosVoip("10.0.0.2", "<urn:uuid:2>"), true, kT0 + absl::Seconds(1)),
              ElementsAre(A(Type::kSendRequest, 2)));
}

TEST(Fork, SixHundredEndsTheFork) {
  Fork f(Policy(), kT0);
  f.Start({Device("10.0.0.1"), IosVoip("10.0.0.2")}, {true, true}, kT0);
  EXPECT_THAT(f.OnResponse(1, 603, kT0 + absl::Seconds(2)),
              ElementsAre(A(Type::kForwardFinal, 1, 603), A(Type::kCancelBranch, 2), kDone));
}

TEST(Fork, BusyEverywhereEndsAtOnceWithBestResponse) {
  Fork f(Policy(), kT0);
  f.Start({Device("10.0.0.1"), Device("10.0.0.2")}, {true, true}, kT0);
  EXPECT_THAT(f.OnResponse(1, 486, kT0), IsEmpty());
  EXPECT_THAT(f.OnResponse(2, 500, kT0), ElementsAre(A(Type::kForwardFinal, 1, 486), kDone));
}

TEST(Fork, TimeoutAndServiceUnavailableDoNotEndAForkWaitingForLateRegistration) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1", "", "phone")}, {true}, kT0);
  EXPECT_THAT(f.OnResponse(1, 408, kT0 + absl::Seconds(32)), IsEmpty());
  EXPECT_FALSE(f.finished());
  // The phone wakes and registers from a new address: the INVITE goes there at once.
  Binding woke = IosVoip("10.9.9.9", "", "phone");
  EXPECT_THAT(f.OnRegistration(woke, true, kT0 + absl::Seconds(40)),
              ElementsAre(A(Type::kSendRequest, 2)));
  EXPECT_TRUE(f.branch(1)->superseded) << "same push token: the same device";
  EXPECT_THAT(f.OnResponse(2, 180, kT0 + absl::Seconds(41)),
              ElementsAre(A(Type::kForwardProvisional, 2, 180)));
  EXPECT_THAT(f.OnResponse(2, 200, kT0 + absl::Seconds(45)),
              ElementsAre(A(Type::kForwardFinal, 2, 200), kDone));
}

TEST(Fork, LateRegistrationAfterPushGoesToTheNewContactAndCancelsTheOldBranch) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1", "<urn:uuid:1>")}, {true}, kT0);
  Binding woke = IosVoip("10.0.0.7", "<urn:uuid:1>");
  woke.push->prid = "ffff0000ffff0000";  // new token, same instance: still the same device
  EXPECT_THAT(f.OnRegistration(woke, true, kT0 + absl::Seconds(3)),
              ElementsAre(A(Type::kCancelBranch, 1), A(Type::kSendRequest, 2)));
  EXPECT_TRUE(f.branch(1)->superseded);
  EXPECT_EQ(f.branch(2)->binding.contact.host, "10.0.0.7");
}

// The superseded branch's CANCEL went out once it sent a provisional response (RFC 3261 9.1):
// that 180 is the cancelled branch's, not news for the caller; the new branch's 180 is.
TEST(Fork, ProvisionalOfACancelledBranchIsNotRelayed) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1", "<urn:uuid:1>")}, {true}, kT0);
  f.OnRegistration(IosVoip("10.0.0.7", "<urn:uuid:1>"), true, kT0 + absl::Seconds(3));
  EXPECT_THAT(f.OnResponse(1, 180, kT0 + absl::Seconds(4)), IsEmpty());
  EXPECT_EQ(f.branch(1)->state, Branch::State::kCancelled);
  EXPECT_THAT(f.OnResponse(2, 180, kT0 + absl::Seconds(4)),
              ElementsAre(A(Type::kForwardProvisional, 2, 180)));
}

TEST(Fork, RegistrationWithSameContactWhileTryingSendsNothingTwice) {
  Fork f(Policy(), kT0);
  f.Start({Android("10.0.0.1")}, {true}, kT0);
  EXPECT_THAT(f.OnRegistration(Android("10.0.0.1"), true, kT0 + absl::Seconds(1)), IsEmpty());
  // ...but the registration came first: the delayed push is no longer needed.
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(3)), IsEmpty());
}

TEST(Fork, NewDeviceRegisteringDuringTheForkGetsTheCall) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1")}, {true}, kT0);
  EXPECT_THAT(f.OnRegistration(Android("10.0.0.2"), true, kT0 + absl::Seconds(5)),
              ElementsAre(A(Type::kSendRequest, 2)));
}

TEST(Fork, TimeoutWithBestResponse) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1"), Android("10.0.0.2"), Device("10.0.0.3")}, {true, true, true}, kT0);
  f.OnResponse(1, 408, kT0 + absl::Seconds(32));
  f.OnResponse(3, 404, kT0 + absl::Seconds(1));
  f.OnResponse(2, 180, kT0 + absl::Seconds(1));
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(90)),
              ElementsAre(A(Type::kCancelBranch, 2), A(Type::kForwardFinal, 3, 404), kDone));
}

TEST(Fork, TimeoutWithoutAnyResponseIs408) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1")}, {false}, kT0);
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(90)),
              ElementsAre(Answer(Outcome::kCallTimeout), kDone));
}

TEST(Fork, BestOf503IsReportedAs500) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1")}, {true}, kT0);
  f.OnResponse(1, 503, kT0 + absl::Seconds(1));
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(90)),
              ElementsAre(Answer(Outcome::kDeviceError), kDone));
}

TEST(Fork, CallerCancelBeforeWakeUpVoipGetsInviteThenCancelOnRegistration) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1", "", "phone")}, {false}, kT0);
  EXPECT_THAT(f.OnCallerCancel(kT0 + absl::Seconds(10)),
              ElementsAre(Answer(Outcome::kCallTerminated)));
  EXPECT_FALSE(f.finished()) << "the VoIP device must still be shown the call";
  // Another device registering changes nothing; the VoIP phone coming back gets INVITE+CANCEL.
  EXPECT_THAT(f.OnRegistration(Android("10.0.0.6"), true, kT0 + absl::Seconds(15)), IsEmpty());
  EXPECT_THAT(f.OnRegistration(IosVoip("10.0.0.5", "", "phone"), true, kT0 + absl::Seconds(20)),
              ElementsAre(A(Type::kSendRequest, 2), A(Type::kCancelBranch, 2), kDone));
}

TEST(Fork, CallerCancelVoipThatNeverRegistersEndsAtTimeout) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1")}, {true}, kT0);
  EXPECT_THAT(f.OnCallerCancel(kT0 + absl::Seconds(10)),
              ElementsAre(A(Type::kCancelBranch, 1), Answer(Outcome::kCallTerminated)));
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(90)), ElementsAre(kDone));
}

TEST(Fork, CallerCancelBeforeWakeUpNonVoipIosGetsMissedCallAlert) {
  Fork f(Policy(), kT0);
  f.Start({IosAlert("10.0.0.1"), Android("10.0.0.2")}, {true, true}, kT0);
  EXPECT_THAT(f.OnCallerCancel(kT0 + absl::Seconds(1)),
              ElementsAre(A(Type::kCancelBranch, 1), Push(1, PushKind::kMissedCallAlert),
                          A(Type::kCancelBranch, 2), Answer(Outcome::kCallTerminated), kDone));
}

TEST(Fork, CallerCancelAfterRingingSendsNoMissedCallPush) {
  Fork f(Policy(), kT0);
  f.Start({IosAlert("10.0.0.1")}, {true}, kT0);
  f.OnResponse(1, 180, kT0);
  EXPECT_THAT(f.OnCallerCancel(kT0 + absl::Seconds(1)),
              ElementsAre(A(Type::kCancelBranch, 1), Answer(Outcome::kCallTerminated), kDone));
}

TEST(Fork, TokenInvalidRemovesTheBindingAndStopsWaitingForIt) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1")}, {false}, kT0);
  EXPECT_THAT(f.OnPushResult(1, Fork::PushOutcome::kTokenInvalid, kT0 + absl::Milliseconds(50)),
              ElementsAre(A(Type::kRemoveBinding, 1), Answer(Outcome::kCallTimeout), kDone));
}

// A device only a push could reach, whose push failed, is not waited for: the caller learns at
// once (480 with a Reason naming the failure), instead of a 408 at the end of the fork time.
TEST(Fork, FailedPushOfTheOnlyDeviceIs480WithReason) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1")}, {false}, kT0);
  ForkAction answer = Answer(Outcome::kPushFailed);
  answer.reason = "SIP;cause=480;text=\"Push failed: RETRY_LATER 503 Unavailable\"";
  EXPECT_THAT(f.OnPushResult(1, Fork::PushOutcome::kFailed, kT0, "RETRY_LATER 503 Unavailable"),
              ElementsAre(answer, kDone));
  EXPECT_TRUE(f.finished());
}

TEST(Fork, PushFailureTextIsQuotedSafely) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1")}, {false}, kT0);
  Fork::Actions out = f.OnPushResult(1, Fork::PushOutcome::kFailed, kT0,
                                     "bad \"quote\"\r\nVia: injected " + std::string(300, 'x'));
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0].outcome, Outcome::kPushFailed);
  EXPECT_THAT(out[0].reason,
              ::testing::StartsWith("SIP;cause=480;text=\"Push failed: bad ?quote??"));
  EXPECT_THAT(out[0].reason, ::testing::Not(::testing::HasSubstr("\r")));
  EXPECT_LE(out[0].reason.size(), 150u);
}

TEST(Fork, FailedPushWhileAnotherDeviceRingsKeepsTheFork) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1"), Device("10.0.0.2")}, {false, true}, kT0);
  f.OnResponse(2, 180, kT0);
  EXPECT_THAT(f.OnPushResult(1, Fork::PushOutcome::kFailed, kT0, "NO_CREDENTIALS"), IsEmpty());
  EXPECT_FALSE(f.finished());
  // The other device declines: its answer, not the push failure, is the best response.
  EXPECT_THAT(f.OnResponse(2, 486, kT0 + absl::Seconds(1)),
              ElementsAre(A(Type::kForwardFinal, 2, 486), kDone));
}

TEST(Fork, AnAcceptedPushMeansTimeoutNotPushFailure) {
  Fork f(Policy(), kT0);
  f.Start({IosVoip("10.0.0.1"), IosVoip("10.0.0.2")}, {false, false}, kT0);
  EXPECT_THAT(f.OnPushResult(1, Fork::PushOutcome::kAccepted, kT0), IsEmpty());
  EXPECT_THAT(f.OnPushResult(2, Fork::PushOutcome::kFailed, kT0, "REJECTED"), IsEmpty());
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(90)),
              ElementsAre(Answer(Outcome::kCallTimeout), kDone));
}

TEST(Fork, AlertPushRepeatsUntilAnswered) {
  ForkPolicy p = Policy();
  p.alert_repeat_interval = absl::Seconds(10);
  Fork f(p, kT0);
  f.Start({IosAlert("10.0.0.1")}, {true}, kT0);
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(3)), ElementsAre(Push(1, PushKind::kAlert), k110));
  EXPECT_EQ(f.NextWakeup(), kT0 + absl::Seconds(13));
  EXPECT_THAT(f.OnTimer(kT0 + absl::Seconds(13)), ElementsAre(Push(1, PushKind::kAlert)));
  f.OnResponse(1, 180, kT0 + absl::Seconds(14));
  EXPECT_EQ(f.NextWakeup(), kT0 + absl::Seconds(90));
}

TEST(Fork, EventsAfterTheEndChangeNothing) {
  Fork f(Policy(), kT0);
  f.Start({Device("10.0.0.1")}, {true}, kT0);
  f.OnResponse(1, 200, kT0);
  EXPECT_THAT(f.OnCallerCancel(kT0), IsEmpty());
  EXPECT_THAT(f.OnRegistration(Device("10.0.0.9"), true, kT0), IsEmpty());
  EXPECT_THAT(f.OnTimer(kT0 + absl::Hours(1)), IsEmpty());
  EXPECT_EQ(f.NextWakeup(), std::nullopt);
}

}  // namespace
}  // namespace pushgate::proxy
