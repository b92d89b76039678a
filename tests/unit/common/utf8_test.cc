#include "common/utf8.h"

#include <gtest/gtest.h>

namespace pushgate {
namespace {

constexpr char kFffd[] = "\xEF\xBF\xBD";

struct Case {
  const char* name;
  std::string in;
  std::string want;
};

class ToValidUtf8Test : public ::testing::TestWithParam<Case> {};

TEST_P(ToValidUtf8Test, Replaces) { EXPECT_EQ(ToValidUtf8(GetParam().in), GetParam().want); }

INSTANTIATE_TEST_SUITE_P(
    Bytes, ToValidUtf8Test,
    ::testing::Values(
        Case{"ascii", "Alice Smith", "Alice Smith"},
        Case{"valid_utf8_kept", "Jos\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\x9E",
             "Jos\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\x9E"},
        // "José Müller" in Latin-1: each of é (E9) and ü (FC) is one invalid byte.
        Case{"latin1", "Jos\xE9 M\xFCller", std::string("Jos") + kFffd + " M" + kFffd + "ller"},
        Case{"truncated_sequence", "a\xE2\x82", std::string("a") + kFffd + kFffd},
        Case{"overlong_slash", "\xC0\xAF", std::string(kFffd) + kFffd},
        Case{"surrogate", "\xED\xA0\x80", std::string(kFffd) + kFffd + kFffd},
        Case{"above_10ffff", "\xF4\x90\x80\x80", std::string(kFffd) + kFffd + kFffd + kFffd},
        Case{"lone_continuation", "\x80x", std::string(kFffd) + "x"}, Case{"empty", "", ""}),
    [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace pushgate
