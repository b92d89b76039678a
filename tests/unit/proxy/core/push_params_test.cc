#include "proxy/core/push_params.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::proxy {
namespace {

using ::testing::HasSubstr;

constexpr char kTok[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr char kTok2[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

absl::StatusOr<std::optional<PushParams>> Parse(const std::string& uri_text) {
  auto uri = ParseUri(uri_text);
  EXPECT_TRUE(uri.ok()) << uri_text << ": " << uri.status();
  if (!uri.ok()) return uri.status();
  return ParsePushParams(*uri);
}

PushParams ParseOk(const std::string& uri_text) {
  auto p = Parse(uri_text);
  EXPECT_TRUE(p.ok()) << uri_text << ": " << p.status();
  EXPECT_TRUE(p.ok() && p->has_value()) << uri_text;
  return p.ok() && p->has_value() ? **p : PushParams();
}

std::string ParseError(const std::string& uri_text) {
  auto p = Parse(uri_text);
  EXPECT_FALSE(p.ok()) << "accepted: " << uri_text;
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

TEST(PushParamsTest, AbsentIsNullopt) {
  auto p = Parse("sip:alice@192.0.2.1:5060;transport=tcp;ob");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_value());
}

TEST(PushParamsTest, Rfc8599ApnsVoip) {
  PushParams p = ParseOk(std::string("sip:alice@192.0.2.1;pn-provider=apns;pn-prid=") + kTok +
                         ";pn-param=ABCD123456.com.example.phone.voip");
  EXPECT_EQ(p.provider, PushParams::kApns);
  EXPECT_EQ(p.provider_name, "apns");
  EXPECT_EQ(p.prid, kTok);
  EXPECT_TRUE(p.voip);
  EXPECT_FALSE(p.legacy);
  EXPECT_EQ(p.ApnsTeamId(), "ABCD123456");
  EXPECT_EQ(p.ApnsBundleId(), "com.example.phone");
  EXPECT_EQ(p.ApnsTopic(), "com.example.phone.voip");
  EXPECT_FALSE(p.capability_query());
}

TEST(PushParamsTest, Rfc8599ApnsAlertAndSandbox) {
  PushParams p = ParseOk(std::string("sip:a@h;pn-provider=apns.dev;pn-prid=") + kTok +
                         ";pn-param=ABCD123456.com.example.phone");
  EXPECT_EQ(p.provider, PushParams::kApnsSandbox);
  EXPECT_FALSE(p.voip);
  EXPECT_EQ(p.ApnsTopic(), "com.example.phone");
}

TEST(PushParamsTest, FlexisipMultiTokenForm) {
  PushParams p = ParseOk(std::string("sip:a@h;pn-provider=apns;pn-prid=") + kTok2 + ":remote&" +
                         kTok + ":voip;pn-param=ABCD123456.org.linphone.phone.remote&voip");
  EXPECT_EQ(p.prid, kTok);
  EXPECT_EQ(p.remote_prid, kTok2);
  EXPECT_TRUE(p.voip);
  EXPECT_EQ(p.ApnsBundleId(), "org.linphone.phone");
  EXPECT_EQ(p.ApnsTopic(), "org.linphone.phone.voip");

  PushParams remote_only = ParseOk(std::string("sip:a@h;pn-provider=apns;pn-prid=") + kTok2 +
                                   ":remote;pn-param=ABCD123456.org.linphone.phone.remote");
  EXPECT_EQ(remote_only.prid, kTok2);
  EXPECT_TRUE(remote_only.remote_prid.empty());
  EXPECT_FALSE(remote_only.voip);
  EXPECT_EQ(remote_only.ApnsTopic(), "org.linphone.phone");
}

TEST(PushParamsTest, PercentEscapedPrid) {
  PushParams p = ParseOk(std::string("sip:a@h;pn-provider=apns;pn-prid=") + kTok + "%3Avoip" +
                         ";pn-param=ABCD123456.com.example.phone.voip");
  EXPECT_EQ(p.prid, kTok);
  EXPECT_TRUE(p.voip);
}

TEST(PushParamsTest, Rfc8599Fcm) {
  PushParams p =
      ParseOk("sip:a@h;pn-provider=fcm;pn-param=my-project;pn-prid=dGVzdA:APA91bH-x_y.z");
  EXPECT_EQ(p.provider, PushParams::kFcm);
  EXPECT_EQ(p.param, "my-project");
  EXPECT_EQ(p.prid, "dGVzdA:APA91bH-x_y.z");
  EXPECT_EQ(PushKey(p), "fcm|my-project|dGVzdA:APA91bH-x_y.z");
}

TEST(PushParamsTest, CapabilityQueryHasNoToken) {
  PushParams p = ParseOk("sip:a@h;pn-provider=fcm");
  EXPECT_TRUE(p.capability_query());
  EXPECT_EQ(PushKey(p), "");
}

TEST(PushParamsTest, UnknownProviderIsOther) {
  PushParams p = ParseOk("sip:a@h;pn-provider=webpush;pn-prid=xyz;pn-param=abc");
  EXPECT_EQ(p.provider, PushParams::kOther);
  EXPECT_EQ(p.provider_name, "webpush");
  EXPECT_EQ(PushKey(p), "webpush|abc|xyz");
}

TEST(PushParamsTest, LegacyApple) {
  PushParams p = ParseOk(std::string("sip:a@h;pn-type=apple;pn-tok=") + kTok +
                         ";app-id=org.linphone.phone.voip.dev;pn-msg-str=IM_MSG;"
                         "pn-call-str=IC_MSG;pn-silent=1;pn-timeout=0");
  EXPECT_TRUE(p.legacy);
  EXPECT_EQ(p.provider, PushParams::kApnsSandbox);
  EXPECT_EQ(p.provider_name, "apple");
  EXPECT_TRUE(p.voip);
  EXPECT_EQ(p.prid, kTok);
  EXPECT_EQ(p.param, "org.linphone.phone.voip.dev");
  EXPECT_EQ(p.ApnsBundleId(), "org.linphone.phone");
  EXPECT_EQ(p.ApnsTopic(), "org.linphone.phone.voip");
  EXPECT_EQ(p.msg_str, "IM_MSG");
  EXPECT_EQ(p.call_str, "IC_MSG");
  EXPECT_TRUE(p.silent);
  EXPECT_EQ(p.timeout_seconds, 0u);

  PushParams prod = ParseOk(std::string("sip:a@h;pn-type=apple;pn-tok=") + kTok +
                            ";app-id=org.linphone.phone.prod");
  EXPECT_EQ(prod.provider, PushParams::kApns);
  EXPECT_FALSE(prod.voip);
  EXPECT_EQ(prod.ApnsTopic(), "org.linphone.phone");
}

TEST(PushParamsTest, LegacyGoogleVariants) {
  for (const char* type : {"google", "firebase", "android"}) {
    PushParams p =
        ParseOk(std::string("sip:a@h;pn-type=") + type + ";pn-tok=abc:DEF-123;app-id=929724111839");
    EXPECT_EQ(p.provider, PushParams::kFcm) << type;
    EXPECT_EQ(p.prid, "abc:DEF-123");
    EXPECT_EQ(p.param, "929724111839");
  }
}

TEST(PushParamsTest, SameDeviceSameKeyAcrossForms) {
  PushParams rfc = ParseOk(std::string("sip:a@h;pn-provider=apns;pn-prid=") + kTok +
                           ";pn-param=ABCD123456.org.linphone.phone.voip");
  PushParams legacy = ParseOk(std::string("sip:a@h;pn-type=apple;pn-tok=") + kTok +
                              ";app-id=org.linphone.phone.voip.prod");
  EXPECT_EQ(PushKey(rfc), PushKey(legacy));
  EXPECT_EQ(PushKey(rfc), std::string("apns|org.linphone.phone|") + kTok);
  PushParams sandbox = ParseOk(std::string("sip:a@h;pn-provider=apns.dev;pn-prid=") + kTok +
                               ";pn-param=ABCD123456.org.linphone.phone.voip");
  EXPECT_NE(PushKey(rfc), PushKey(sandbox));
  PushParams other_token = ParseOk(std::string("sip:a@h;pn-provider=apns;pn-prid=") + kTok2 +
                                   ";pn-param=ABCD123456.org.linphone.phone.voip");
  EXPECT_NE(PushKey(rfc), PushKey(other_token));
}

TEST(PushParamsTest, MalformedReasons) {
  const std::string t = kTok;
  EXPECT_EQ(ParseError("sip:a@h;pn-prid=" + t), "pn-prid without pn-provider");
  EXPECT_EQ(ParseError("sip:a@h;pn-param=x.y"), "pn-param without pn-provider");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider;pn-prid=" + t), "empty pn-provider");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=fcm;pn-prid"), "empty pn-prid");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=apns;pn-prid=" + t),
            "pn-param missing for APNs (<TeamID>.<bundle-id>)");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=apns;pn-prid=" + t + ";pn-param=com.example.app"),
            "pn-param \"com.example.app\" is not <TeamID>.<bundle-id>");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=apns;pn-prid=" + t + ";pn-param=ABCD123456"),
            "pn-param \"ABCD123456\" is not <TeamID>.<bundle-id>");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=apns;pn-prid=" + t + ";pn-param=ABCD123456.voip"),
            "pn-param \"ABCD123456.voip\" has no bundle id");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=apns;pn-prid=xyz;pn-param=ABCD123456.a.b"),
            "pn-prid is not a hexadecimal APNs token");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=apns;pn-prid=" + t + ":push;pn-param=ABCD123456.a"),
            "pn-prid token type \"push\" is not remote or voip");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=apns;pn-prid=" + t + ":voip&" + t +
                       ":voip;pn-param=ABCD123456.a"),
            "pn-prid has two voip tokens");
  EXPECT_THAT(
      ParseError("sip:a@h;pn-provider=apns;pn-prid=" + t + "&" + t + ":voip;pn-param=ABCD123456.a"),
      HasSubstr("is not <token>:remote or <token>:voip"));
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=fcm;pn-prid=bad%20token"),
            "pn-prid is not a valid FCM token");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=fcm;pn-param"), "empty pn-param");
  EXPECT_EQ(ParseError("sip:a@h;pn-tok=abc"), "pn-tok without pn-type");
  EXPECT_EQ(ParseError("sip:a@h;app-id=abc"), "app-id without pn-type");
  EXPECT_EQ(ParseError("sip:a@h;pn-type=apple;app-id=x"), "pn-type \"apple\" without pn-tok");
  EXPECT_EQ(ParseError("sip:a@h;pn-type=google;pn-tok=abc"), "pn-type \"google\" without app-id");
  EXPECT_EQ(ParseError("sip:a@h;pn-type=apple;pn-tok=zz;app-id=x"),
            "pn-tok is not a hexadecimal APNs token");
  EXPECT_EQ(ParseError("sip:a@h;pn-provider=fcm;pn-prid=abc;pn-timeout=soon"),
            "invalid pn-timeout \"soon\"");
}

TEST(PushParamsTest, IsPushParamName) {
  EXPECT_TRUE(IsPushParamName("pn-prid"));
  EXPECT_TRUE(IsPushParamName("PN-Provider"));
  EXPECT_TRUE(IsPushParamName("app-id"));
  EXPECT_TRUE(IsPushParamName("pn-msg-str"));
  EXPECT_FALSE(IsPushParamName("transport"));
  EXPECT_FALSE(IsPushParamName("pnx"));
}

}  // namespace
}  // namespace pushgate::proxy
