#include "core/base/check.h"

#include "absl/status/status.h"
#include "core/base/types.h"
#include "gtest/gtest.h"

namespace blixard {
namespace {

TEST(CheckTest, PassingChecksDoNothing) {
  int evaluated = 0;
  CHECK(++evaluated == 1) << "not printed";
  CHECK_EQ(++evaluated, 2);
  CHECK_LT(1, 2);
  CHECK_OK(absl::OkStatus());
  EXPECT_EQ(evaluated, 2);
}

TEST(CheckTest, OperandsAreEvaluatedOnce) {
  int calls = 0;
  auto next = [&calls] { return ++calls; };
  CHECK_EQ(next(), 1);
  EXPECT_EQ(calls, 1);
}

TEST(CheckDeathTest, FailedCheckAbortsWithContext) {
  EXPECT_DEATH(CHECK(1 + 1 == 3) << "arithmetic", "CHECK failed: 1 \\+ 1 == 3 arithmetic");
}

TEST(CheckDeathTest, FailedComparisonPrintsOperands) {
  const Term current(7);
  const Term message(5);
  EXPECT_DEATH(CHECK_GE(message, current) << "stale", "\\(t5 vs. t7\\) stale");
  EXPECT_DEATH(CHECK_EQ(2, 3), "CHECK failed: 2 == 3 \\(2 vs. 3\\)");
}

TEST(CheckDeathTest, CheckOkPrintsTheStatus) {
  EXPECT_DEATH(CHECK_OK(absl::DataLossError("torn page")), "DATA_LOSS: torn page");
}

TEST(CheckDeathTest, DcheckFollowsTheBuild) {
  if (kExpensiveChecks) {
    EXPECT_DEATH(DCHECK_EQ(1, 2), "CHECK failed");
  } else {
    int evaluated = 0;
    DCHECK_EQ(++evaluated, 2);
    EXPECT_EQ(evaluated, 0) << "a compiled-out DCHECK must not evaluate";
  }
}

}  // namespace
}  // namespace blixard
