// The driver of the golden-script tests (raft_scenario_test, regress_test):
// the scripts come as arguments, each command's output is compared with
// the expected text under it, and after an intended change
//   bazel run //<test> -- --rewrite      (or BLIXARD_REWRITE=1)
// writes the actual outputs back into the sources instead, for review.
// Rewriting needs BUILD_WORKSPACE_DIRECTORY, which `bazel run` sets.
//
// Link `:golden_scripts` (it holds main()) and read GoldenScripts() in a
// TEST. testonly.
#ifndef BLIXARD_SIM_GOLDEN_SCRIPTS_H_
#define BLIXARD_SIM_GOLDEN_SCRIPTS_H_

#include <string>
#include <vector>

#include "core/raft/testing/scenario_format.h"

namespace blixard::sim {

struct GoldenScriptArgs {
  std::vector<std::string> scripts;  // the arguments ending in ".txt"
  bool rewrite = false;              // --rewrite or BLIXARD_REWRITE=1
};

// What main() parsed from the command line.
const GoldenScriptArgs& GoldenScripts();

// The whole file (empty when it cannot be read).
std::string ReadScript(const std::string& path);

// Unless rewriting: expects outputs[i] == cases[i].expected, naming the
// script line on a mismatch. When rewriting: writes the script back with
// these outputs. REQUIRES: outputs.size() == cases.size().
void CheckOrRewriteScript(const std::string& path, const std::vector<raft::testing::ScenarioCase>& cases,
                          const std::vector<std::string>& outputs);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_GOLDEN_SCRIPTS_H_
