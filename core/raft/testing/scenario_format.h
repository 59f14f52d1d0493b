// The data-driven script format shared by the Raft scenario scripts
// (testdata/raft/, core/raft/testing/scenario.h) and the simulation
// regression scripts (testdata/regress/, sim/sim_scenario.h), in the style
// of etcd-raft's datadriven tests:
//
//   # comments and blank lines
//   command arg key=value
//   ----
//   expected output (one or more lines, never blank)
//
// Only the format: what a command means is the interpreter's business.
// Pure (no files): callers read and write the text. Not testonly, so tools
// (`blixard sim --shrink`) can write scripts too.
#ifndef BLIXARD_CORE_RAFT_TESTING_SCENARIO_FORMAT_H_
#define BLIXARD_CORE_RAFT_TESTING_SCENARIO_FORMAT_H_

#include <string>
#include <vector>

namespace blixard::raft::testing {

// One "command / ---- / expected output" block of a script.
struct ScenarioCase {
  int line = 0;              // 1-based line of the command
  std::string comments;      // comment and blank lines before the command
  std::string command;
  std::string expected;      // without the trailing newline
};

// Parses a script. Malformed scripts (a command without "----") yield an
// error string in *error.
std::vector<ScenarioCase> ParseScenario(const std::string& text,
                                        std::string* error);
// Renders cases back to script text with the given outputs.
std::string FormatScenario(const std::vector<ScenarioCase>& cases,
                           const std::vector<std::string>& outputs,
                           const std::string& trailer);

}  // namespace blixard::raft::testing

#endif  // BLIXARD_CORE_RAFT_TESTING_SCENARIO_FORMAT_H_
