#include "pusher/core/topic.h"

#include <gtest/gtest.h>

namespace pushgate::pusher {
namespace {

TEST(ApnsPnParam, ParsesTeamBundleAndVoip) {
  absl::StatusOr<ApnsTopic> t = ParseApnsPnParam("ABCD123456.com.example.phone.voip");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->team_id, "ABCD123456");
  EXPECT_EQ(t->bundle_id, "com.example.phone");
  EXPECT_TRUE(t->voip);
  EXPECT_EQ(ApnsTopicFor(*t, v1::VOIP), "com.example.phone.voip");
  EXPECT_EQ(ApnsTopicFor(*t, v1::ALERT), "com.example.phone");
  EXPECT_EQ(ApnsTopicFor(*t, v1::BACKGROUND), "com.example.phone");
}

TEST(ApnsPnParam, WithoutServiceAndWithOtherServices) {
  absl::StatusOr<ApnsTopic> plain = ParseApnsPnParam("ABCD123456.com.example.phone");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->bundle_id, "com.example.phone");
  EXPECT_FALSE(plain->voip);

  absl::StatusOr<ApnsTopic> apns = ParseApnsPnParam("ABCD123456.com.example.phone.apns");
  ASSERT_TRUE(apns.ok());
  EXPECT_EQ(apns->bundle_id, "com.example.phone");
  EXPECT_FALSE(apns->voip);

  absl::StatusOr<ApnsTopic> linphone =
      ParseApnsPnParam("ABCD123456.org.linphone.phone.remote&voip");
  ASSERT_TRUE(linphone.ok()) << linphone.status();
  EXPECT_EQ(linphone->bundle_id, "org.linphone.phone");
  EXPECT_TRUE(linphone->voip);

  absl::StatusOr<ApnsTopic> single = ParseApnsPnParam("ABCD123456.phone");
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->bundle_id, "phone");
}

TEST(ApnsPnParam, Errors) {
  EXPECT_FALSE(ParseApnsPnParam("").ok());
  EXPECT_FALSE(ParseApnsPnParam("ABCD123456").ok());              // no bundle
  EXPECT_FALSE(ParseApnsPnParam("ABCD123456.").ok());             // empty bundle
  EXPECT_FALSE(ParseApnsPnParam("ABC.com.example").ok());         // short team id
  EXPECT_FALSE(ParseApnsPnParam("abcd123456.com.example").ok());  // lower case team id
  EXPECT_FALSE(ParseApnsPnParam("ABCD123456.com..example").ok());
  EXPECT_FALSE(ParseApnsPnParam("ABCD123456.com.exa mple").ok());
  EXPECT_FALSE(ParseApnsPnParam("ABCD123456.com/example").ok());
}

TEST(FcmPnParam, ProjectId) {
  EXPECT_EQ(*ParseFcmPnParam("my-project-123"), "my-project-123");
  EXPECT_TRUE(ParseFcmPnParam("google.com:legacy-project").ok());
  EXPECT_FALSE(ParseFcmPnParam("").ok());
  EXPECT_FALSE(ParseFcmPnParam("a/b").ok());
  EXPECT_FALSE(ParseFcmPnParam("a b").ok());
  EXPECT_FALSE(ParseFcmPnParam(std::string(101, 'a')).ok());
}

TEST(ParseApnsPnParamCached, SameAnswersAsTheParser) {
  const char* params[] = {"ABCD123456.com.example.phone.voip", "ABCD123456.com.example.phone",
                          "WXYZ987654.org.other.app.remote&voip", "bad", "ABCD123456.com.x!y"};
  for (int round = 0; round < 3; ++round) {
    for (const char* p : params) {
      absl::StatusOr<ApnsTopic> want = ParseApnsPnParam(p);
      absl::StatusOr<const ApnsTopic*> got = ParseApnsPnParamCached(p);
      ASSERT_EQ(got.ok(), want.ok()) << p;
      if (!want.ok()) {
        EXPECT_EQ(got.status(), want.status());
        continue;
      }
      EXPECT_EQ((*got)->team_id, want->team_id) << p;
      EXPECT_EQ((*got)->bundle_id, want->bundle_id) << p;
      EXPECT_EQ((*got)->voip, want->voip) << p;
      EXPECT_EQ(ParseApnsPnParamCached(p).value(), *got) << "a repeat is answered from the cache";
    }
  }
}

}  // namespace
}  // namespace pushgate::pusher
