#include "core/base/status_macros.h"

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<int> Parse(bool ok) {
  if (!ok) return absl::InvalidArgumentError("not a number");
  return 42;
}

absl::Status Chain(bool first_ok, bool second_ok, int* out) {
  RETURN_IF_ERROR(first_ok ? absl::OkStatus() : absl::NotFoundError("first"));
  ASSIGN_OR_RETURN(*out, Parse(second_ok));
  return absl::OkStatus();
}

absl::StatusOr<std::string> WithContext(bool ok) {
  ASSIGN_OR_RETURN(int value, Parse(ok), _.prepend("reading header: "));
  return std::to_string(value);
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtTheFirstError) {
  int out = 0;
  EXPECT_THAT(Chain(false, true, &out), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(out, 0);
  EXPECT_THAT(Chain(true, false, &out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(out, 0);
  EXPECT_THAT(Chain(true, true, &out), IsOk());
  EXPECT_EQ(out, 42);
}

TEST(StatusMacrosTest, AssignOrReturnAddsContextAndKeepsTheCode) {
  EXPECT_THAT(WithContext(false),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("reading header: not a number")));
  absl::StatusOr<std::string> good = WithContext(true);
  ASSERT_THAT(good, IsOk());
  EXPECT_EQ(*good, "42");
}

TEST(StatusMatchersTest, MatchersDistinguishCodes) {
  EXPECT_THAT(absl::DataLossError("x"), Not(IsOk()));
  EXPECT_THAT(absl::DataLossError("x"),
              Not(StatusIs(absl::StatusCode::kInternal)));
  EXPECT_THAT(absl::StatusOr<int>(3), IsOk());
}

TEST(StatusMacrosTest, AnnotateKeepsOkUntouched) {
  EXPECT_THAT(Annotate(absl::OkStatus(), "ctx: "), IsOk());
  EXPECT_THAT(Annotate(absl::AbortedError("boom"), "ctx: "),
              StatusIs(absl::StatusCode::kAborted, "ctx: boom"));
}

}  // namespace
}  // namespace blixard
