#include "proxy/core/message_check.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pushgate::proxy {
namespace {

// A valid REGISTER's facts; each case changes one thing.
MessageFacts Valid() {
  MessageFacts f;
  for (const char* name : {"Via", "From", "To", "Call-ID", "CSeq"}) {
    f.headers.push_back({name, 1, std::string(name) != "Via", false});
  }
  f.headers.push_back({"Max-Forwards", 1, true, false});
  f.numbers = {{"Max-Forwards", "70"}, {"CSeq", "1"}, {"Expires", "3600"}};
  f.content_length = 0;
  f.datagram = true;
  return f;
}

struct Case {
  const char* name;
  void (*change)(MessageFacts&);
  const char* reason;  // "" -> valid
};

class CheckMessageTest : public ::testing::TestWithParam<Case> {};

TEST_P(CheckMessageTest, Verdict) {
  MessageFacts f = Valid();
  GetParam().change(f);
  CheckResult r = CheckMessage(f);
  const std::string want = GetParam().reason;
  EXPECT_EQ(r.ok, want.empty()) << r.reason;
  EXPECT_EQ(r.reason, want);
}

INSTANTIATE_TEST_SUITE_P(
    Rules, CheckMessageTest,
    ::testing::Values(
        Case{"valid", [](MessageFacts&) {}, ""},
        Case{"duplicate_max_forwards", [](MessageFacts& f) { f.headers.back().count = 2; },
             "Duplicate Max-Forwards"},
        Case{"triple_user_agent",
             [](MessageFacts& f) {
               f.headers.push_back({"User-Agent", 3, true, false});
             },
             "Duplicate User-Agent"},
        Case{"two_vias_fine", [](MessageFacts& f) { f.headers[0].count = 2; }, ""},
        Case{"missing_call_id", [](MessageFacts& f) { f.headers[3].count = 0; }, "Missing Call-ID"},
        Case{"missing_via", [](MessageFacts& f) { f.headers.erase(f.headers.begin()); },
             "Missing Via"},
        Case{"no_max_forwards_fine",
             [](MessageFacts& f) {
               f.headers.pop_back();
               f.numbers.erase(f.numbers.begin());
             },
             ""},
        Case{"max_forwards_zero_is_classify_s", [](MessageFacts& f) { f.numbers[0].value = "0"; },
             ""},
        Case{"max_forwards_negative", [](MessageFacts& f) { f.numbers[0].value = "-1"; },
             "Bad Max-Forwards"},
        Case{"expires_2_32", [](MessageFacts& f) { f.numbers[2].value = "4294967296"; },
             "Bad Expires"},
        Case{"expires_2_32_minus_1", [](MessageFacts& f) { f.numbers[2].value = "4294967295"; },
             ""},
        Case{"expires_text", [](MessageFacts& f) { f.numbers[2].value = "soon"; }, "Bad Expires"},
        Case{"expires_empty", [](MessageFacts& f) { f.numbers[2].value = " "; }, "Bad Expires"},
        Case{"contact_expires",
             [](MessageFacts& f) {
               f.numbers.push_back({"Contact expires", "99999999999"});
             },
             "Bad Contact expires"},
        Case{"cseq_huge",
             [](MessageFacts& f) { f.numbers[1].value = "123456789012345678901234567890"; },
             "Bad CSeq"},
        Case{"malformed_cseq", [](MessageFacts& f) { f.headers[4].malformed = true; }, "Bad CSeq"},
        Case{"malformed_other_header_lenient",
             [](MessageFacts& f) {
               f.headers.push_back({"Date", 1, true, true});
             },
             ""},
        Case{"udp_content_length_beyond_body",
             [](MessageFacts& f) {
               f.content_length = 10;
               f.body_size = 3;
             },
             "Bad Content-Length"},
        Case{"tcp_content_length_is_framing",
             [](MessageFacts& f) {
               f.datagram = false;
               f.content_length = 10;
               f.body_size = 3;
             },
             ""},
        Case{"udp_body_longer_fine",
             [](MessageFacts& f) {
               f.content_length = 3;
               f.body_size = 10;
             },
             ""},
        Case{"duplicate_wins_over_missing",
             [](MessageFacts& f) {
               f.headers[3].count = 0;
               f.headers[4].count = 2;
             },
             "Duplicate CSeq"}),
    [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

TEST(ParseUint32Test, Bounds) {
  EXPECT_EQ(ParseUint32("0"), 0u);
  EXPECT_EQ(ParseUint32(" 70 "), 70u);
  EXPECT_EQ(ParseUint32("4294967295"), 4294967295u);
  EXPECT_EQ(ParseUint32("4294967296"), std::nullopt);
  EXPECT_EQ(ParseUint32("-1"), std::nullopt);
  EXPECT_EQ(ParseUint32("+1"), std::nullopt);
  EXPECT_EQ(ParseUint32("1e3"), std::nullopt);
  EXPECT_EQ(ParseUint32(""), std::nullopt);
}

}  // namespace
}  // namespace pushgate::proxy
