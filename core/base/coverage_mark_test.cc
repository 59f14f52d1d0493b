#include "core/base/coverage_mark.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace blixard {
namespace {

TEST(CoverageMarkTest, MarksCountAndReset) {
  ResetCoverageMarks();
  COVERAGE_MARK(check_quorum_step_down);
  COVERAGE_MARK(check_quorum_step_down);
  COVERAGE_MARK(torn_write_on_restart);
  CoverageMarkCounts counts = ReadCoverageMarks();
  EXPECT_EQ(counts[static_cast<size_t>(CoverageMark::check_quorum_step_down)], 2u);
  EXPECT_EQ(counts[static_cast<size_t>(CoverageMark::torn_write_on_restart)], 1u);
  EXPECT_EQ(counts[static_cast<size_t>(CoverageMark::uncommitted_suffix_truncated)], 0u);
  ResetCoverageMarks();
  for (uint64_t count : ReadCoverageMarks()) EXPECT_EQ(count, 0u);
}

TEST(CoverageMarkTest, EveryMarkHasADistinctNameAndADescription) {
  std::set<std::string> names;
  for (size_t i = 0; i < kCoverageMarkCount; ++i) {
    const CoverageMark mark = CoverageMarkAt(i);
    EXPECT_TRUE(names.insert(std::string(CoverageMarkName(mark))).second);
    EXPECT_FALSE(CoverageMarkDescription(mark).empty());
  }
  EXPECT_EQ(CoverageMarkName(CoverageMark::conf_change_during_election),
            "conf_change_during_election");
  EXPECT_GE(kCoverageMarkCount, 5u);
}

}  // namespace
}  // namespace blixard
