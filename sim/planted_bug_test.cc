// One planted bug (named by --planted_bug=NAME, one test target per bug in
// sim/BUILD.bazel): plants it, sweeps seeds 1..2000 until the oracles catch
// it, checks the violation is of the property the bug breaks, and that each
// seed it ran passes with the bug switched off (its trace in order too). A
// failure to find the bug means the simulator has lost the power to find
// this classic Raft mistake: strengthen the oracle or the fault mix, never
// the bug. A seed failing with nothing planted is a bug of its own (or a
// false alarm): fix it, never skip it.
#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "core/base/planted_bug.h"
#include "core/base/planted_bug_testing.h"
#include "gtest/gtest.h"
#include "sim/planted_bug_search.h"
#include "sim/shrink.h"
#include "sim/sim_scenario.h"

namespace blixard::sim {
namespace {

constexpr uint64_t kFirstSeed = 1;
constexpr uint64_t kLastSeed = 2000;

PlantedBug g_bug = PlantedBug::kNone;

// The oracle property each bug violates first (SimulationReport's
// violation_property, the identifier form), and why.
std::set<std::string> ExpectedProperties(PlantedBug bug) {
  switch (bug) {
    case PlantedBug::kVoteWithoutLogCheck:
      // A candidate without a committed entry wins: checked as it wins.
      return {"leader_completeness"};
    case PlantedBug::kCommitPreviousTerm:
      // The new leader commits an old-term entry by counting (§5.4.2). In
      // Blixard the no-op entry of each new term makes the Figure 8 loss
      // itself rare, so the oracle checks the commit rule directly.
      return {"current_term_commits"};
    case PlantedBug::kAckBeforeDurable:
      return {"acknowledged_writes_durable"};
    case PlantedBug::kReadWithoutReadIndex:
      // A read answered from state older than what was already committed
      // (the workload's read-freshness check), or, less often, a stale
      // value the per-key history check cannot explain.
      return {"linearizable_reads", "linearizability"};
    case PlantedBug::kForgetVoteOnRestart:
      // The recovered hard state lacks the vote it granted; a second
      // grant in the same term (vote safety) can only come after.
      return {"votes_durable"};
    case PlantedBug::kNone:
      break;
  }
  return {};
}

TEST(PlantedBugTest, OraclesCatchThePlantedBug) {
  ASSERT_NE(g_bug, PlantedBug::kNone) << "run with --planted_bug=NAME";
  ScopedPlantedBugForTesting planted(g_bug);
  const PlantedBugSearchResult result =
      FindFailingSeed(PlantedBugSearchOptions, kFirstSeed, kLastSeed);
  std::printf("planted %s: %s after %llu seeds; unplanted failures skipped: [%s]\n",
              std::string(PlantedBugName(g_bug)).c_str(),
              result.found ? ("found at seed " + std::to_string(result.seed)).c_str()
                           : "NOT found",
              static_cast<unsigned long long>(result.seeds_run),
              absl::StrJoin(result.unplanted_failures, ", ").c_str());
  ASSERT_TRUE(result.found) << "no seed in [" << kFirstSeed << ", " << kLastSeed
                            << "] caught " << PlantedBugName(g_bug);
  std::printf("violation: %s\n", result.report.failure.c_str());
  // The finding is the bug's alone: every seed the search ran passes with
  // nothing planted. A seed that fails either way is a real bug or an
  // oracle's false alarm, and must not hide behind the planted one.
  EXPECT_TRUE(result.unplanted_failures.empty())
      << "seeds that fail without any planted bug: "
      << absl::StrJoin(result.unplanted_failures, ", ");
  {
    ScopedPlantedBugForTesting unplanted(PlantedBug::kNone);
    for (uint64_t seed = kFirstSeed; seed <= result.seed; ++seed) {
      SimulationOptions options = PlantedBugSearchOptions(seed);
      options.check_trace_order = true;
      const SimulationReport clean = RunSimulation(options);
      EXPECT_TRUE(clean.passed) << "seed " << seed << " fails with no bug planted: "
                                << clean.failure;
      EXPECT_FALSE(clean.recovery_impossible)
          << "seed " << seed << " is excused with no bug planted: " << clean.recovery_detail;
    }
  }
  EXPECT_EQ(result.report.planted_bug, g_bug);
  const std::set<std::string> expected = ExpectedProperties(g_bug);
  EXPECT_TRUE(expected.count(result.report.violation_property) > 0)
      << PlantedBugName(g_bug) << " was caught as '" << result.report.violation_property
      << "', expected one of {" << absl::StrJoin(expected, ", ")
      << "}: " << result.report.failure;

  // And shrunk: the minimized run still fails the same way, is no bigger
  // in any dimension and smaller in some, and its script replays it.
  ShrinkOptions shrink_options;
  shrink_options.runs_max = 400;
  const ShrinkResult shrunk = Shrink(PlantedBugSearchOptions(result.seed), shrink_options);
  ASSERT_TRUE(shrunk.failed);
  ASSERT_TRUE(shrunk.reproduced) << "the recorded replay of seed " << result.seed
                                 << " did not fail the same way";
  EXPECT_EQ(shrunk.property, result.report.violation_property);
  EXPECT_EQ(shrunk.shrunk_report.violation_property, shrunk.property);
  std::printf("shrunk in %d runs%s: %s -> %s\n", shrunk.runs,
              shrunk.budget_exhausted ? " (budget spent)" : "", shrunk.before.ToString().c_str(),
              shrunk.after.ToString().c_str());
  EXPECT_LE(shrunk.after.nodes, shrunk.before.nodes);
  EXPECT_LE(shrunk.after.duration_us, shrunk.before.duration_us);
  EXPECT_LE(shrunk.after.faults, shrunk.before.faults);
  EXPECT_LE(shrunk.after.ops, shrunk.before.ops);
  EXPECT_LT(shrunk.after.faults + shrunk.after.ops, shrunk.before.faults + shrunk.before.ops);
  absl::StatusOr<std::string> script = WriteSimScript(shrunk.shrunk, {"planted-bug test"});
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_TRUE(absl::StrContains(*script, "violation " + shrunk.property)) << *script;
}

}  // namespace
}  // namespace blixard::sim

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  constexpr char kFlag[] = "--planted_bug=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], kFlag, sizeof(kFlag) - 1) != 0) continue;
    absl::StatusOr<blixard::PlantedBug> bug =
        blixard::ParsePlantedBug(argv[i] + sizeof(kFlag) - 1);
    if (!bug.ok()) {
      std::fprintf(stderr, "%s\n", std::string(bug.status().message()).c_str());
      return 2;
    }
    blixard::sim::g_bug = *bug;
  }
  return RUN_ALL_TESTS();
}
