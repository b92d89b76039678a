// Hostile input never crashes the parsers: seeded random mutations of valid inputs (run under
// the asan preset to catch memory errors). Each parser either accepts or returns an error.
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "proxy/core/binding.h"
#include "proxy/core/contact.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/push_params.h"
#include "proxy/core/sip_uri.h"

namespace pushgate::proxy {
namespace {

std::string Mutate(std::string s, std::mt19937& rng) {
  static constexpr char kAlphabet[] = "<>\";:@,=&%[]?*\\ \t.-_aZ09\x01\xff";
  std::uniform_int_distribution<int> op(0, 3);
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    const size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    const char c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
    switch (op(rng)) {
      case 0:
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), c);
        break;
      case 1:
        if (pos < s.size()) s.erase(pos, 1);
        break;
      case 2:
        if (pos < s.size()) s[pos] = c;
        break;
      default:
        s = s.substr(0, pos);
        break;
    }
  }
  return s;
}

TEST(RobustnessTest, ContactAndPushParsersSurviveMutations) {
  const std::string seeds[] = {
      R"("Alice" <sip:alice@[2001:db8::1]:5060;transport=tcp;pn-provider=apns;pn-prid=abcd:voip&ef01:remote;pn-param=ABCD123456.org.x.remote&voip>;expires=60;q=0.5;+sip.instance="<urn:uuid:1>";reg-id=1)",
      "sip:bob@example.org;pn-type=apple;pn-tok=abcdef;app-id=org.x.voip.dev, *",
      "Bob <sips:bob:pw@h:1;x?y=z>, <sip:c@d;pn-provider=fcm;pn-prid=a:b-c;pn-param=p>;q=1.000",
  };
  std::mt19937 rng(20261127);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    const std::string input = Mutate(seeds[round % 3], rng);
    auto list = ParseContacts(input);
    if (!list.ok()) {
      EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    ++accepted;
    for (const Contact& c : list->contacts) {
      (void)c.expires();
      (void)c.q();
      (void)c.reg_id();
      // Whatever was accepted formats into something that parses to the same value.
      auto again = ParseContact(FormatContact(c));
      EXPECT_TRUE(again.ok()) << input << " -> " << FormatContact(c);
      if (again.ok()) {
        EXPECT_EQ(*again, c) << input;
      }
      auto push = ParsePushParams(c.uri);
      if (push.ok() && *push) (void)PushKey(**push);
    }
  }
  EXPECT_GT(accepted, 100);  // the mutations do not only produce garbage
}

TEST(RobustnessTest, DecodeAndRestoreSurviveMutations) {
  Binding b;
  b.aor = "sip:a@b";
  b.contact = *ParseUri("sip:a@192.0.2.1;pn-provider=fcm;pn-prid=tok;pn-param=p");
  b.push = **ParsePushParams(b.contact);
  b.call_id = "c";
  const std::string record = EncodeBindings({b, b});
  MasqueradeCodec codec("secret");
  const Uri masq =
      codec.Masquerade(*ParseContact("<sip:a@192.0.2.1>"), {Transport::kTcp, "gw", 5060},
                       std::nullopt, {Transport::kUdp, "192.0.2.1", 5060}, "sip:a@b");
  const std::string value = *Param(masq, kMasqueradeParam);
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    (void)DecodeBindings(Mutate(record, rng), "sip:a@b");
    Uri uri = masq;
    const std::string mutated = Mutate(value, rng);
    SetParam(uri, kMasqueradeParam, mutated);
    auto restored = codec.Restore(uri);
    if (mutated != value) {
      EXPECT_FALSE(restored.ok()) << mutated;
    }
  }
}

}  // namespace
}  // namespace pushgate::proxy
