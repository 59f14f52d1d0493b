// Simulation regression scripts: a whole simulation run written down in the
// data-driven script format (core/raft/testing/scenario_format.h), so that a
// shrunk failure (sim/shrink.h) is a file a person can read and `bazel test`
// replays forever (//sim:regress_test over testdata/regress/). The commands
// are documented in testdata/regress/README.md:
//
//   # how it was found
//   sim seed=7 nodes=3 duration=4.000001s workload=mixed liveness=30s
//   ----
//   ok
//
//   fault 2000000 partition nodes=1,2 others=3
//   ----
//   ok
//
//   op 1520311 put client=1000 id=3 seq=2 rng=41 kv_put { key: "k1" value: "c1000-2" }
//   ----
//   ok
//
//   run
//   ----
//   violation election_safety
//   election safety violated at t=3999870 us on n2
//   faults applied 3, client ops 1 invoked (0 ok, 0 failed, 1 unknown), 12 entries committed
//
// `sim` starts a run description (key=value options; unknown keys are
// errors, so options can be added without old scripts changing meaning),
// `swarm <params>` makes it a swarm run with those SwarmParams (its nodes,
// workload and clients),
// `fault` and `op` append one FaultSchedule line / one ClientOp line, `run`
// runs it and prints the outcome. Without `faults=` the fault lines are the
// whole schedule (none: no faults); without `ops=drawn` the op lines are
// all the client operations (none: no operations).
//
// Pure apart from running simulations: no files; the test and the CLI read
// and write them.
#ifndef BLIXARD_SIM_SIM_SCENARIO_H_
#define BLIXARD_SIM_SIM_SCENARIO_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/raft/testing/scenario_format.h"
#include "sim/simulation.h"

namespace blixard::sim {

// Interprets the commands of one script, in order.
class SimScenarioRunner {
 public:
  // Runs one command line and returns its output (never empty, no blank
  // lines). INVALID_ARGUMENT saying what is wrong for an unknown command, a
  // malformed or unknown key=value, a bad fault or op line, a command out
  // of order (fault/op/run before sim).
  absl::StatusOr<std::string> Run(absl::string_view command);

 private:
  absl::StatusOr<std::string> Sim(absl::string_view args);
  absl::StatusOr<std::string> Swarm(absl::string_view params);
  absl::StatusOr<std::string> AddFault(absl::string_view line);
  absl::StatusOr<std::string> AddOp(absl::string_view line);
  absl::StatusOr<std::string> RunSim();

  // The run being described; nullopt before the first `sim`.
  std::optional<SimulationOptions> options_;
  bool generated_faults_ = false;  // faults=<profile> given
  bool drawn_ops_ = false;         // ops=drawn given
};

// Parses and runs a whole script. Returns the parsed cases and, for each,
// the output its command produced. Errors: INVALID_ARGUMENT
// "<file>:<line>: <what>" for a malformed script or a bad command.
struct SimScriptRun {
  std::vector<raft::testing::ScenarioCase> cases;
  std::vector<std::string> outputs;
};
absl::StatusOr<SimScriptRun> RunSimScript(absl::string_view file, const std::string& text);

// The `run` command's output for a report: "passed" or "violation <id>" and
// the violation's time and node, then one line of counts. No wall time, no
// hashes: stable as long as the run behaves the same.
std::string SimRunOutput(const SimulationReport& report);

// The `sim` command line for explicit options (schedule and ops set).
std::string SimCommandLine(const SimulationOptions& options);

// A script for explicit options (REQUIRES: schedule and ops set): `header`
// lines become leading '#' comments; the expected outputs are obtained by
// running the script, so the text is exactly what //sim:regress_test will
// compare. Errors as RunSimScript.
absl::StatusOr<std::string> WriteSimScript(const SimulationOptions& options,
                                           const std::vector<std::string>& header);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIM_SCENARIO_H_
