// Runs every scenario script in testdata/raft/ (passed as arguments) and
// compares each command's output with the golden text in the script.
//
// Rewrite the golden text after an intended change:
//   bazel run //sim:raft_scenario_test -- --rewrite
// (or BLIXARD_REWRITE=1 with bazel run). Rewriting needs
// BUILD_WORKSPACE_DIRECTORY, which `bazel run` sets, to find the sources.
#include <string>
#include <vector>

#include "sim/golden_scripts.h"
#include "core/raft/testing/scenario.h"
#include "gtest/gtest.h"

namespace blixard::raft::testing {
namespace {

using sim::CheckOrRewriteScript;
using sim::GoldenScripts;
using sim::ReadScript;

TEST(ScenarioTest, AllScripts) {
  const std::vector<std::string>& scripts = GoldenScripts().scripts;
  ASSERT_GE(scripts.size(), 1u) << "no scripts given";
  for (const std::string& path : scripts) {
    SCOPED_TRACE(path);
    std::string error;
    std::vector<ScenarioCase> cases = ParseScenario(ReadScript(path), &error);
    ASSERT_TRUE(error.empty()) << error;
    ASSERT_FALSE(cases.empty()) << "empty script";
    ScenarioRunner runner;
    std::vector<std::string> outputs;
    for (const ScenarioCase& c : cases) outputs.push_back(runner.Run(c.command));
    CheckOrRewriteScript(path, cases, outputs);
  }
  // The issue asks for at least 40 scripts; a lost glob must not pass.
  EXPECT_GE(scripts.size(), 40u);
}

}  // namespace
}  // namespace blixard::raft::testing
