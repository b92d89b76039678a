#include "common/status.h"

#include <gtest/gtest.h>

#include <string>

namespace pushgate {
namespace {

absl::Status Fails() { return absl::NotFoundError("no such thing"); }
absl::Status Succeeds() { return absl::OkStatus(); }
absl::StatusOr<int> Number(bool ok) {
  if (!ok) return absl::InvalidArgumentError("not a number");
  return 42;
}

absl::Status Chain(bool first_ok, int* reached) {
  *reached = 0;
  RETURN_IF_ERROR(first_ok ? Succeeds() : Fails());
  *reached = 1;
  return absl::OkStatus();
}

absl::StatusOr<std::string> Twice(bool ok) {
  ASSIGN_OR_RETURN(int n, Number(ok));
  ASSIGN_OR_RETURN(int m, Number(true));  // two in one scope must not clash
  return std::to_string(n + m);
}

TEST(StatusMacros, ReturnIfErrorReturnsTheError) {
  int reached = -1;
  absl::Status s = Chain(false, &reached);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "no such thing");
  EXPECT_EQ(reached, 0);
}

TEST(StatusMacros, ReturnIfErrorContinuesOnOk) {
  int reached = -1;
  EXPECT_TRUE(Chain(true, &reached).ok());
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacros, AssignOrReturnAssignsValue) {
  auto r = Twice(true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "84");
}

TEST(StatusMacros, AssignOrReturnPropagatesError) {
  auto r = Twice(false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "not a number");
}

TEST(StatusMacros, AssignOrReturnIntoExistingVariable) {
  auto f = [](bool ok) -> absl::Status {
    int existing = 0;
    ASSIGN_OR_RETURN(existing, Number(ok));
    return existing == 42 ? absl::OkStatus() : absl::InternalError("wrong value");
  };
  EXPECT_TRUE(f(true).ok());
  EXPECT_FALSE(f(false).ok());
}

}  // namespace
}  // namespace pushgate
