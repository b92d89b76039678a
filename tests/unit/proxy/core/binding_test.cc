#include "proxy/core/binding.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::proxy {
namespace {

using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

Binding Sample() {
  Binding b;
  b.aor = "sip:alice@example.org";
  b.contact = *ParseUri(
      "sip:alice@[2001:db8::7]:50123;transport=tcp;pn-provider=apns;pn-prid=abcdef0123;"
      "pn-param=ABCD123456.org.example.phone.voip;ob");
  b.instance_id = "<urn:uuid:00000000-0000-1000-8000-000a95a0e128>";
  b.reg_id = 2;
  b.q = 0.7f;
  b.push = **ParsePushParams(b.contact);
  b.received = {Transport::kTcp, "2001:db8::7", 50123};
  b.flow_token = "conn-42";
  b.expires_at = kT0 + absl::Seconds(3600);
  b.call_id = "a84b4c76e66710@pc33.example.org";
  b.cseq = 314159;
  b.updated_at = kT0 + absl::Milliseconds(1);
  return b;
}

TEST(BindingCodecTest, RoundTripWithDerivedPush) {
  Binding b = Sample();
  Binding no_push = Sample();
  no_push.contact = *ParseUri("sips:bob:pw@host.example;x=1?h=v");
  no_push.push.reset();
  no_push.instance_id.clear();
  no_push.reg_id = 0;
  no_push.flow_token.clear();
  const std::string record = EncodeBindings({b, no_push});
  auto decoded = DecodeBindings(record, "sip:alice@example.org");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_EQ((*decoded)[0], b);
  EXPECT_EQ((*decoded)[1], no_push);
  // The token is stored once (in the contact), not twice.
  EXPECT_EQ(record.find("abcdef0123"), record.rfind("abcdef0123"));
}

TEST(BindingCodecTest, RoundTripWithExplicitPush) {
  Binding b = Sample();
  b.push->prid = "different-from-contact";
  b.push->msg_str = "msg";
  b.push->timeout_seconds = 30;
  b.push->silent = true;
  auto decoded = DecodeBindings(EncodeBindings({b}), b.aor);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_EQ((*decoded)[0], b);
}

TEST(BindingCodecTest, EmptyList) {
  auto decoded = DecodeBindings(EncodeBindings({}), "sip:x@y");
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->empty());
}

TEST(BindingCodecTest, CorruptRecordsAreRejectedNotCrashing) {
  const std::string record = EncodeBindings({Sample(), Sample()});
  for (size_t len = 0; len < record.size(); ++len) {
    auto decoded = DecodeBindings(record.substr(0, len), "sip:a@b");
    EXPECT_FALSE(decoded.ok()) << "truncated to " << len;
  }
  EXPECT_THAT(std::string(DecodeBindings(record + "x", "a").status().message()),
              HasSubstr("trailing bytes"));
  std::string other_version = record;
  other_version[0] = 9;
  EXPECT_THAT(std::string(DecodeBindings(other_version, "a").status().message()),
              HasSubstr("unknown version 9"));
  EXPECT_FALSE(DecodeBindings(std::string("\x01\xff\xff\xff\xff\x0f", 6), "a").ok());
}

TEST(BindingTest, PushKeyExpiryAndDebugString) {
  Binding b = Sample();
  EXPECT_EQ(b.push_key(), "apns|org.example.phone|abcdef0123");
  EXPECT_FALSE(b.expired(kT0));
  EXPECT_TRUE(b.expired(kT0 + absl::Seconds(3600)));
  b.push.reset();
  EXPECT_EQ(b.push_key(), "");
  const std::string debug = DebugString(Sample());
  EXPECT_THAT(debug, HasSubstr("aor=sip:alice@example.org"));
  EXPECT_THAT(debug, ::testing::Not(HasSubstr("abcdef0123")));
  EXPECT_EQ(EarliestExpiry({}), absl::InfiniteFuture());
  Binding early = Sample();
  early.expires_at = kT0;
  EXPECT_EQ(EarliestExpiry({Sample(), early}), kT0);
}

}  // namespace
}  // namespace pushgate::proxy
