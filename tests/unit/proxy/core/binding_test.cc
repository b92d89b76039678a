#include "proxy/core/binding.h"

#include <nlohmann/json.hpp>

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

TEST(BindingTest, JsonForOperatorsHidesTokensAndPushParameters) {
  Binding b = Sample();
  b.call_id = "bad\xff utf8";
  Binding plain = Sample();
  plain.contact = *ParseUri("sip:alice@192.0.2.9:5062");
  plain.push.reset();
  plain.flow_token.clear();
  plain.expires_at = kT0 - absl::Seconds(1);
  const std::string text = BindingsJson("sip:alice@example.org", {b, plain}, kT0);
  EXPECT_THAT(text, ::testing::Not(HasSubstr("abcdef0123"))) << text;
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["aor"], "sip:alice@example.org");
  ASSERT_EQ(j["bindings"].size(), 2u);
  const nlohmann::json& first = j["bindings"][0];
  EXPECT_EQ(first["contact"], "sip:alice@[2001:db8::7]:50123;transport=tcp;ob");
  EXPECT_EQ(first["instance"], "<urn:uuid:00000000-0000-1000-8000-000a95a0e128>");
  EXPECT_EQ(first["reg_id"], 2);
  EXPECT_EQ(first["flow"], true);
  EXPECT_EQ(first["expires_in_s"], 3600);
  EXPECT_EQ(first["cseq"], 314159);
  EXPECT_EQ(first["push"]["provider"], "apns");
  EXPECT_EQ(first["push"]["param"], "ABCD123456.org.example.phone.voip");
  EXPECT_EQ(first["push"]["voip"], true);
  EXPECT_NE(first["push"]["token"], "abcdef0123");
  EXPECT_THAT(first["received"].get<std::string>(), HasSubstr("2001:db8::7"));
  const nlohmann::json& second = j["bindings"][1];
  EXPECT_EQ(second["contact"], "sip:alice@192.0.2.9:5062");
  EXPECT_FALSE(second.contains("push"));
  EXPECT_EQ(second["flow"], false);
  EXPECT_EQ(second["expires_in_s"], 0);
  EXPECT_EQ(nlohmann::json::parse(BindingsJson("sip:x@y", {}, kT0))["bindings"].size(), 0u);
}

}  // namespace
}  // namespace pushgate::proxy
