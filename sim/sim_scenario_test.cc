#include "sim/sim_scenario.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A recorded run written as a script replays to the output written into it,
// and the script carries exactly the run's faults and operations.
TEST(SimScenarioTest, WrittenScriptReplaysTheRecordedRun) {
  SimulationOptions drawn;
  drawn.seed = 4;
  drawn.nodes = 3;
  drawn.duration_us = 3'000'000;
  drawn.faults = FaultProfile::kHeavy;
  const SimulationReport report = RunSimulation(drawn);
  ASSERT_TRUE(report.passed) << report.failure;
  SimulationOptions explicit_run = drawn;
  explicit_run.schedule = report.schedule;
  explicit_run.ops = report.ops;
  absl::StatusOr<std::string> text = WriteSimScript(explicit_run, {"recorded from seed 4"});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, StartsWith("# recorded from seed 4\n\nsim seed=4 nodes=3 duration=3s "));
  EXPECT_THAT(*text, HasSubstr("\nrun\n----\npassed\n"));

  absl::StatusOr<SimScriptRun> run = RunSimScript("x.txt", *text);
  ASSERT_TRUE(run.ok()) << run.status();
  size_t faults = 0, ops = 0;
  for (size_t i = 0; i < run->cases.size(); ++i) {
    EXPECT_EQ(run->outputs[i], run->cases[i].expected) << run->cases[i].command;
    faults += absl::StartsWith(run->cases[i].command, "fault ") ? 1 : 0;
    ops += absl::StartsWith(run->cases[i].command, "op ") ? 1 : 0;
  }
  EXPECT_EQ(faults, report.schedule.faults.size());
  EXPECT_EQ(ops, report.ops.size());
  EXPECT_EQ(run->outputs.back(), SimRunOutput(report));
}

TEST(SimScenarioTest, RunOutputNamesTheViolation) {
  SimulationReport report;
  report.passed = false;
  report.violation_property = "election_safety";
  report.failure = "election safety violated at t=1200 us on n2: two leaders in term 3";
  report.faults = {{"crash", 2}, {"lost_packets", 40}};
  report.clients.invoked = 3;
  report.clients.ok = 2;
  report.clients.unknown = 1;
  report.entries_committed = 9;
  EXPECT_EQ(SimRunOutput(report),
            "violation election_safety\n"
            "election safety violated at t=1200 us on n2\n"
            "faults applied 2, client ops 3 invoked (2 ok, 0 failed, 1 unknown), 9 entries "
            "committed");
}

TEST(SimScenarioTest, GeneratedFaultsAndDrawnOpsAreOptions) {
  absl::StatusOr<SimScriptRun> run = RunSimScript(
      "g.txt", "sim seed=3 nodes=3 duration=2s faults=heavy ops=drawn\n----\nok\n\nrun\n----\n?\n");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_THAT(run->outputs[1], StartsWith("passed\nfaults applied "));
}

// Bad input names the file, the line and what was wrong.
TEST(SimScenarioTest, BadScriptsAreRefusedWithFileLineAndReason) {
  const std::string sim = "sim seed=1 nodes=3 duration=1s\n----\nok\n\n";
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"sim seed=1\nrun\n", {"bad.txt:1:", "command without ----"}},
      {"sim seed=1 color=red\n----\nok\n", {"bad.txt:1:", "unknown key \"color\""}},
      {"sim seed=x\n----\nok\n", {"bad.txt:1:", "bad seed"}},
      {"sim seed\n----\nok\n", {"bad.txt:1:", "not key=value"}},
      {"sim nodes=12\n----\nok\n", {"bad.txt:1:", "nodes must be in"}},
      {"sim duration=-3s\n----\nok\n", {"bad.txt:1:", "not a positive duration"}},
      {sim + "fault 100 explode nodes=1\n----\nok\n", {"bad.txt:5:", "unknown fault kind"}},
      {sim + "fault 100 crash\n----\nok\n", {"bad.txt:5:", "needs nodes="}},
      {sim + "fault 100 crash nodes=1 speed=3\n----\nok\n", {"bad.txt:5:", "unknown key"}},
      {sim + "fault 200 crash nodes=1\n----\nok\n\nfault 100 restart nodes=1\n----\nok\n",
       {"bad.txt:9:", "times must not decrease"}},
      {sim + "op 100 get client=1000 rng=1 kv_get: \"k\"\n----\nok\n",
       {"bad.txt:5:", "needs client=, id= and rng="}},
      {sim + "op 100 get client=7 id=1 rng=1 kv_get: \"k\"\n----\nok\n",
       {"bad.txt:5:", "no such client"}},
      {"fault 100 crash nodes=1\n----\nok\n", {"bad.txt:1:", "fault before sim"}},
      {"run\n----\nok\n", {"bad.txt:1:", "run before sim"}},
      {"simulate\n----\nok\n", {"bad.txt:1:", "unknown command \"simulate\""}},
      {"sim faults=heavy\n----\nok\n\nfault 100 crash nodes=1\n----\nok\n",
       {"bad.txt:5:", "faults=<profile>"}},
  };
  for (const auto& [text, wanted] : cases) {
    absl::StatusOr<SimScriptRun> run = RunSimScript("bad.txt", text);
    ASSERT_FALSE(run.ok()) << text;
    EXPECT_EQ(run.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& want : wanted) {
      EXPECT_THAT(std::string(run.status().message()), HasSubstr(want)) << text;
    }
  }
}

}  // namespace
}  // namespace blixard::sim
