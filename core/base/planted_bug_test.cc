#include "core/base/planted_bug.h"

#include "core/base/planted_bug_testing.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard {
namespace {

using ::testing::HasSubstr;
using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;

// Tests run in a normal build: nothing is planted unless a test plants it.
TEST(PlantedBugTest, NothingIsPlantedByDefault) {
  EXPECT_EQ(BuildPlantedBug(), PlantedBug::kNone);
  EXPECT_EQ(ActivePlantedBug(), PlantedBug::kNone);
  for (PlantedBug bug : AllPlantedBugs()) EXPECT_FALSE(Planted(bug));
}

TEST(PlantedBugTest, NamesRoundTrip) {
  EXPECT_EQ(AllPlantedBugs().size(), static_cast<size_t>(kPlantedBugCount - 1));
  for (int i = 0; i < kPlantedBugCount; ++i) {
    const PlantedBug bug = static_cast<PlantedBug>(i);
    absl::StatusOr<PlantedBug> parsed = ParsePlantedBug(PlantedBugName(bug));
    ASSERT_THAT(parsed.status(), IsOk());
    EXPECT_EQ(*parsed, bug);
  }
  EXPECT_EQ(PlantedBugName(PlantedBug::kCommitPreviousTerm), "commit_previous_term");
}

TEST(PlantedBugTest, UnknownNameIsAClearError) {
  absl::StatusOr<PlantedBug> parsed = ParsePlantedBug("commit_old_term");
  EXPECT_THAT(parsed.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("commit_old_term")));
  EXPECT_THAT(parsed.status().message(), HasSubstr("forget_vote_on_restart"));
}

TEST(PlantedBugTest, ScopedPlantingNestsAndRestores) {
  {
    ScopedPlantedBugForTesting outer(PlantedBug::kAckBeforeDurable);
    EXPECT_TRUE(Planted(PlantedBug::kAckBeforeDurable));
    EXPECT_FALSE(Planted(PlantedBug::kForgetVoteOnRestart));
    {
      ScopedPlantedBugForTesting inner(PlantedBug::kForgetVoteOnRestart);
      EXPECT_EQ(ActivePlantedBug(), PlantedBug::kForgetVoteOnRestart);
    }
    EXPECT_EQ(ActivePlantedBug(), PlantedBug::kAckBeforeDurable);
  }
  EXPECT_EQ(ActivePlantedBug(), PlantedBug::kNone);
}

}  // namespace
}  // namespace blixard
