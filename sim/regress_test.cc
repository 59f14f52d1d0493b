// Replays every simulation regression script in testdata/regress/ (passed
// as arguments) and compares each command's output with the expected text
// in the script (sim/sim_scenario.h; the commands are documented in
// testdata/regress/README.md).
//
// After an intended behaviour change, rewrite the expected text and review
// the diff:
//   bazel run //sim:regress_test -- --rewrite
// (or BLIXARD_REWRITE=1 with bazel run; rewriting needs
// BUILD_WORKSPACE_DIRECTORY, which `bazel run` sets, to find the sources).
#include <string>
#include <vector>

#include "sim/golden_scripts.h"
#include "gtest/gtest.h"
#include "sim/sim_scenario.h"

namespace blixard::sim {
namespace {

TEST(RegressTest, AllScripts) {
  const std::vector<std::string>& scripts = GoldenScripts().scripts;
  for (const std::string& path : scripts) {
    SCOPED_TRACE(path);
    absl::StatusOr<SimScriptRun> run = RunSimScript(path, ReadScript(path));
    ASSERT_TRUE(run.ok()) << run.status().message();
    ASSERT_FALSE(run->cases.empty()) << path << ": empty script";
    bool ran = false;
    for (const auto& c : run->cases) ran |= c.command == "run";
    CheckOrRewriteScript(path, run->cases, run->outputs);
    EXPECT_TRUE(ran) << path << ": no run command, nothing is checked";
  }
  // A lost glob or an emptied directory must not pass as "nothing failed".
  EXPECT_GE(scripts.size(), 1u) << "no scripts in testdata/regress/";
}

}  // namespace
}  // namespace blixard::sim
