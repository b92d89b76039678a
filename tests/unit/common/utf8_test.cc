#include "common/utf8.h"

#include <gtest/gtest.h>

namespace pushgate {
namespace {

struct Case {
  const char* name;
  std::string text;
  std::optional<size_t> first_invalid;
  std::string repaired;
};

class Utf8Test : public ::testing::TestWithParam<Case> {};

TEST_P(Utf8Test, FindsTheFirstInvalidByteAndRepairs) {
  const Case& c = GetParam();
  EXPECT_EQ(FirstInvalidUtf8(c.text), c.first_invalid);
  EXPECT_EQ(ToValidUtf8(c.text), c.repaired);
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8(c.text)));
}

const std::string kFffd = "\xEF\xBF\xBD";

INSTANTIATE_TEST_SUITE_P(
    Table, Utf8Test,
    ::testing::Values(
        Case{"Empty", "", std::nullopt, ""}, Case{"Ascii", "Alice", std::nullopt, "Alice"},
        Case{"TwoByte", "Jos\xC3\xA9", std::nullopt, "Jos\xC3\xA9"},
        Case{"FourByte", "\xF0\x9F\x93\x9E", std::nullopt, "\xF0\x9F\x93\x9E"},
        // A Latin-1 display name, legal in SIP: "José" with é as the single byte 0xE9.
        Case{"Latin1", "Jos\xE9", 3, "Jos" + kFffd},
        Case{"Latin1Middle", "Ren\xE9 M", 3, "Ren" + kFffd + " M"},
        Case{"LoneContinuation",
             "a\x80"
             "b",
             1, "a" + kFffd + "b"},
        Case{"OverlongSlash", "\xC0\xAF", 0, kFffd},
        Case{"OverlongThreeByte", "\xE0\x80\xAF", 0, kFffd},
        Case{"Surrogate", "\xED\xA0\x80", 0, kFffd},
        Case{"AboveMaxCodePoint", "\xF4\x90\x80\x80", 0, kFffd},
        Case{"TruncatedAtEnd", "ok\xE2\x82", 2, "ok" + kFffd}, Case{"Ff", "\xFF", 0, kFffd}),
    [](const ::testing::TestParamInfo<Case>& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace pushgate
