// The coverage sweep (issue 7): every coverage mark must be hit by the
// sweep's seeds, or the simulator is not reaching a rare path we rely on it
// to test. A missed mark fails the test by name.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "sim/coverage_sweep.h"

namespace blixard::sim {
namespace {

constexpr uint64_t kFirstSeed = 1;
constexpr uint64_t kLastSeed = 500;

TEST(CoverageMarksTest, SweepHitsEveryMark) {
  const CoverageSweepResult sweep = RunCoverageSweep(CoverageSweepOptions, kFirstSeed, kLastSeed);
  std::printf("coverage marks over seeds %llu-%llu:\n%s",
              static_cast<unsigned long long>(kFirstSeed),
              static_cast<unsigned long long>(kLastSeed), sweep.Table().c_str());
  EXPECT_EQ(sweep.seeds, kLastSeed - kFirstSeed + 1);
  std::vector<std::string> missed;
  for (CoverageMark mark : sweep.Missed()) {
    missed.push_back(absl::StrCat(CoverageMarkName(mark), " (", CoverageMarkDescription(mark), ")"));
  }
  EXPECT_TRUE(missed.empty()) << "coverage marks never hit in seeds " << kFirstSeed << "-"
                              << kLastSeed << ": " << absl::StrJoin(missed, "; ");
  // The sweep should also pass: a failing seed is a bug to fix (or a false
  // alarm of an oracle), whatever the marks say.
  for (const auto& [seed, failure] : sweep.failures) {
    ADD_FAILURE() << "seed " << seed << " failed: " << failure;
  }
}

}  // namespace
}  // namespace blixard::sim
