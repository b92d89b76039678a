#include "proxy/core/masquerade.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::proxy {
namespace {

using ::testing::HasSubstr;

constexpr char kSecret[] = "replicas-share-this-secret";

Contact PhoneContact(const std::string& user, const std::string& hostport,
                     const std::string& extra_params = "") {
  auto c = ParseContact("<sip:" + user + "@" + hostport +
                        ";transport=tcp;pn-provider=apns;pn-prid=abcdef;"
                        "pn-param=ABCD123456.org.example.voip" +
                        extra_params + ">;expires=3600;+sip.instance=\"<urn:uuid:1>\"");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : Contact();
}

// What the backend sends back: the masqueraded URI, printed and parsed again (as on the wire).
Uri OverTheWire(const Uri& uri) {
  auto parsed = ParseUri(FormatUri(uri));
  EXPECT_TRUE(parsed.ok()) << FormatUri(uri) << ": " << parsed.status();
  return parsed.ok() ? *parsed : Uri();
}

class MasqueradeRoundTripTest
    : public ::testing::TestWithParam<std::tuple<Transport, bool /*ipv6*/, bool /*insert*/>> {};

TEST_P(MasqueradeRoundTripTest, RestoresWhatWasEncoded) {
  const auto [transport, ipv6, insert_domain] = GetParam();
  MasqueradeCodec codec(kSecret);
  const TransportInfo original{transport, ipv6 ? "2001:db8:0:1::a0" : "198.51.100.7", 50123};
  const TransportInfo advertised{transport == Transport::kUdp ? Transport::kUdp : Transport::kTcp,
                                 ipv6 ? "2001:db8::53" : "203.0.113.5", 5070};
  const std::string host = ipv6 ? "[2001:db8:0:1::a0]:50123" : "198.51.100.7:50123";
  const Contact contact = PhoneContact("alice", host);
  const std::optional<std::string> domain =
      insert_domain ? std::optional<std::string>("example.org") : std::nullopt;

  const Uri masq = codec.Masquerade(contact, advertised, domain, original, "sip:alice@example.org");

  // What the backend sees: our host/port, no phone parameters, just transport + pgw.
  EXPECT_EQ(masq.user, "alice");
  EXPECT_EQ(masq.host, advertised.host);
  EXPECT_EQ(masq.port, advertised.port);
  const std::string text = FormatUri(masq);
  EXPECT_THAT(text, ::testing::Not(HasSubstr("pn-")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr(ipv6 ? "2001:db8:0:1::a0" : "198.51.100.7")));
  EXPECT_TRUE(MasqueradeCodec::HasMarker(masq));
  EXPECT_EQ(masq.params.size(), advertised.transport == Transport::kUdp ? 1u : 2u) << text;
  EXPECT_EQ(*UriTransport(masq), advertised.transport);

  auto target = codec.Restore(OverTheWire(masq));
  ASSERT_TRUE(target.ok()) << target.status() << " for " << text;
  EXPECT_TRUE(target->doroute);
  EXPECT_EQ(target->insert_domain, insert_domain);
  EXPECT_EQ(target->aor, "sip:alice@example.org");
  EXPECT_EQ(target->user, "alice");
  if (insert_domain) {
    EXPECT_EQ(target->aor_domain, "example.org");
    EXPECT_EQ(FormatUri(target->restored), "sip:alice@example.org");
  } else {
    EXPECT_EQ(target->original, original);
    const std::string suffix =
        transport == Transport::kUdp ? "" : ";transport=" + std::string(TransportName(transport));
    EXPECT_EQ(FormatUri(target->restored), "sip:alice@" + host + suffix);
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, MasqueradeRoundTripTest,
                         ::testing::Combine(::testing::Values(Transport::kUdp, Transport::kTcp,
                                                              Transport::kTls),
                                            ::testing::Bool(), ::testing::Bool()));

TEST(MasqueradeTest, UserWithSpecialCharactersSurvives) {
  MasqueradeCodec codec(kSecret);
  const Contact contact = PhoneContact("+33%20612;x&y=z$", "192.0.2.1:5060");
  ASSERT_EQ(contact.uri.user, "+33%20612;x&y=z$");
  const Uri masq = codec.Masquerade(contact, {Transport::kUdp, "203.0.113.5", 5060}, std::nullopt,
                                    {Transport::kUdp, "192.0.2.1", 5060});
  auto target = codec.Restore(OverTheWire(masq));
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->restored.user, "+33%20612;x&y=z$");
  EXPECT_EQ(target->aor, "");
  EXPECT_EQ(FormatUri(target->restored), "sip:+33%20612;x&y=z$@192.0.2.1:5060");
}

TEST(MasqueradeTest, SipsSchemeIsKept) {
  MasqueradeCodec codec(kSecret);
  Contact contact = *ParseContact("<sips:bob@192.0.2.9:5061>");
  const Uri masq = codec.Masquerade(contact, {Transport::kTls, "gw.example.net", 5061},
                                    std::nullopt, {Transport::kTls, "192.0.2.9", 5061});
  EXPECT_EQ(masq.scheme, "sips");
  auto target = codec.Restore(OverTheWire(masq));
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(FormatUri(target->restored), "sips:bob@192.0.2.9:5061;transport=tls");
}

TEST(MasqueradeTest, ValueUsesOnlyUriSafeCharacters) {
  MasqueradeCodec codec(kSecret);
  for (int port = 1; port < 65536; port += 4099) {
    const Uri masq = codec.Masquerade(
        PhoneContact("u", "h.example"), {Transport::kUdp, "gw", 5060}, std::nullopt,
        {Transport::kTls, "fe80::1:2:3", static_cast<uint16_t>(port)});
    const std::string value = *Param(masq, kMasqueradeParam);
    for (char c : value) {
      EXPECT_TRUE(absl::ascii_isalnum(c) || c == '-' || c == '_') << value;
    }
  }
}

// The device tag rides along (authenticated) and comes back byte for byte; values made without
// one (by an older gateway, or in insert-domain mode) restore with none.
TEST(MasqueradeDeviceTest, DeviceTagRoundTrips) {
  MasqueradeCodec codec(kSecret);
  const TransportInfo original{Transport::kUdp, "198.51.100.7", 5060};
  const Uri with = codec.Masquerade(PhoneContact("alice", "198.51.100.7:5060"),
                                    {Transport::kUdp, "203.0.113.5", 5060}, std::nullopt, original,
                                    "sip:alice@example.org", "instance:<urn:uuid:1>");
  auto target = codec.Restore(OverTheWire(with));
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->device_tag, DeviceTag("instance:<urn:uuid:1>"));
  EXPECT_EQ(target->device_tag.size(), 8u);
  EXPECT_EQ(target->aor, "sip:alice@example.org");
  EXPECT_EQ(target->original, original);
  EXPECT_THAT(FormatUri(with), ::testing::Not(HasSubstr("uuid")));

  const Uri without = codec.Masquerade(PhoneContact("alice", "198.51.100.7:5060"),
                                       {Transport::kUdp, "203.0.113.5", 5060}, std::nullopt,
                                       original, "sip:alice@example.org");
  target = codec.Restore(OverTheWire(without));
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->device_tag, "");
}

TEST(MasqueradeDeviceTest, DeviceTagsDifferPerDevice) {
  EXPECT_EQ(DeviceTag(""), "");
  EXPECT_EQ(DeviceTag("instance:<urn:uuid:1>"), DeviceTag("instance:<urn:uuid:1>"));
  EXPECT_NE(DeviceTag("instance:<urn:uuid:1>"), DeviceTag("instance:<urn:uuid:2>"));
  EXPECT_NE(DeviceTag("push:apns:a"), DeviceTag("push:apns:b"));
}

class MasqueradeTamperTest : public ::testing::Test {
 protected:
  MasqueradeCodec codec_{kSecret};
  Uri masq_ = codec_.Masquerade(PhoneContact("alice", "198.51.100.7:5060"),
                                {Transport::kUdp, "203.0.113.5", 5060}, std::nullopt,
                                {Transport::kUdp, "198.51.100.7", 5060}, "sip:alice@example.org");
  std::string value_ = *Param(masq_, kMasqueradeParam);

  absl::Status RestoreWith(const std::string& value) {
    Uri uri = masq_;
    SetParam(uri, kMasqueradeParam, value);
    return codec_.Restore(uri).status();
  }
};

TEST_F(MasqueradeTamperTest, EveryFlippedCharacterIsRejected) {
  for (size_t i = 0; i < value_.size(); ++i) {
    std::string tampered = value_;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    const absl::Status s = RestoreWith(tampered);
    EXPECT_FALSE(s.ok()) << "position " << i;
    EXPECT_TRUE(s.code() == absl::StatusCode::kPermissionDenied ||
                s.code() == absl::StatusCode::kInvalidArgument)
        << s;
  }
  // A change inside the payload (not the last, partially used character) is an auth failure.
  std::string middle = value_;
  middle[middle.size() / 2] = middle[middle.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(RestoreWith(middle).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(MasqueradeTamperTest, ForgedValueForAnotherHostIsRejected) {
  MasqueradeCodec attacker("attacker-guess");
  const Uri forged = attacker.Masquerade(PhoneContact("alice", "evil.example:5060"),
                                         {Transport::kUdp, "203.0.113.5", 5060}, std::nullopt,
                                         {Transport::kUdp, "evil.example", 5060});
  const absl::Status s = codec_.Restore(forged).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "masquerade value failed authentication");
}

TEST_F(MasqueradeTamperTest, TruncatedAndGarbage) {
  for (size_t len :
       {size_t{0}, size_t{1}, size_t{5}, size_t{10}, value_.size() - 1, value_.size() - 4}) {
    const absl::Status s = RestoreWith(value_.substr(0, len));
    EXPECT_FALSE(s.ok()) << "length " << len;
  }
  EXPECT_THAT(std::string(RestoreWith("not*base64").message()), HasSubstr("not base64url"));
  EXPECT_THAT(std::string(RestoreWith("AAAA").message()), HasSubstr("too short"));
  EXPECT_FALSE(RestoreWith(value_ + "AA").ok());
  Uri flag_only = masq_;
  SetParam(flag_only, kMasqueradeParam, "");
  EXPECT_FALSE(codec_.Restore(flag_only).ok());
}

// A value has one spelling: the same bytes written with padding, whitespace or other unused
// trailing bits (all decodable by a lenient base64 decoder, and then authentic) are refused.
TEST_F(MasqueradeTamperTest, OnlyTheCanonicalSpellingIsAccepted) {
  ASSERT_TRUE(codec_.Restore(masq_).ok());
  std::vector<std::string> spellings = {value_ + "\n", " " + value_,
                                        value_.substr(0, 8) + " " + value_.substr(8)};
  if (value_.size() % 4 != 0) {
    spellings.push_back(value_ + std::string(4 - value_.size() % 4, '='));
    // The last character carries 2 or 4 unused bits: set the lowest one.
    std::string last_bit = value_;
    const char* const kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const size_t index = std::string(kAlphabet).find(last_bit.back());
    last_bit.back() = kAlphabet[index | 1];
    spellings.push_back(last_bit);
  }
  for (const std::string& spelling : spellings) {
    const absl::Status s = RestoreWith(spelling);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "\"" << spelling << "\": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("not base64url")) << spelling;
  }
}

TEST_F(MasqueradeTamperTest, MissingMarker) {
  Uri plain = *ParseUri("sip:alice@203.0.113.5:5060");
  EXPECT_FALSE(MasqueradeCodec::HasMarker(plain));
  EXPECT_EQ(codec_.Restore(plain).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MasqueradeTamperTest, WrongSecretAndRotation) {
  MasqueradeCodec other("another-secret");
  EXPECT_EQ(other.Restore(masq_).status().code(), absl::StatusCode::kPermissionDenied);
  MasqueradeCodec rotated("new-secret", {kSecret});
  auto target = rotated.Restore(masq_);
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->original.host, "198.51.100.7");
}

TEST(MasqueradeSecretTest, GeneratedSecretsDiffer) {
  const std::string a = MasqueradeCodec::GenerateSecret();
  const std::string b = MasqueradeCodec::GenerateSecret();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace pushgate::proxy

namespace pushgate::proxy {
namespace {

// The tag is standard HMAC-SHA256 (so another implementation sharing the secret can verify it):
// HMAC(secret, "pushgate-masquerade-v1" || payload), first 12 bytes, after the payload.
std::string ReferenceTag(const std::string& secret, const std::string& payload) {
  const std::string data = "pushgate-masquerade-v1" + payload;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), 12);
}

std::string DecodeValue(std::string value) {
  for (char& c : value) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (value.size() % 4 != 0) value.push_back('=');
  std::string out;
  EXPECT_TRUE(absl::Base64Unescape(value, &out)) << value;
  return out;
}

TEST(MasqueradeTagTest, IsStandardHmacSha256ForShortAndLongSecrets) {
  for (const std::string& secret : {std::string("k"), std::string(64, 'x'), std::string(200, 'y'),
                                    MasqueradeCodec::GenerateSecret()}) {
    MasqueradeCodec codec(secret);
    const Uri masq =
        codec.Masquerade(*ParseContact("<sip:a@192.0.2.1>"), {Transport::kUdp, "gw", 5060},
                         std::nullopt, {Transport::kUdp, "192.0.2.1", 5060}, "sip:a@example.org");
    const std::string raw = DecodeValue(*Param(masq, kMasqueradeParam));
    ASSERT_GT(raw.size(), 12u);
    EXPECT_EQ(raw.substr(raw.size() - 12), ReferenceTag(secret, raw.substr(0, raw.size() - 12)))
        << "secret length " << secret.size();
  }
}

}  // namespace
}  // namespace pushgate::proxy
