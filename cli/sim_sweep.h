// Runs many simulation seeds in parallel worker processes (`blixard sim
// --seeds=A-B --jobs=N`). Each worker is a fork of this process that runs
// its share of the seeds one after another and reports one line per seed
// through a pipe; the parent shows progress and ends with a table.
//
// Processes rather than threads: a simulation that CHECK-fails (a bug the
// oracles did not catch first) takes down only its worker, which the parent
// reports as a crashed seed with its replay line.
#ifndef BLIXARD_CLI_SIM_SWEEP_H_
#define BLIXARD_CLI_SIM_SWEEP_H_

#include <cstdint>
#include <string>

#include "sim/simulation.h"

namespace blixard::cli {

struct SweepOptions {
  uint64_t first_seed = 1;
  uint64_t last_seed = 1;
  int jobs = 2;
  sim::SimulationOptions base;  // seed overwritten per run
  // The flags a replay line repeats besides --seed (e.g. "--faults=heavy").
  std::string replay_flags;
};

// Returns the process exit code: 0 when no seed failed (a seed whose
// recovery was impossible under the fault model is not a failure; the table
// lists it apart), 1 otherwise.
int RunSweep(const SweepOptions& options);

// "A-B" or "A" -> [A, B]. INVALID_ARGUMENT with the reason otherwise.
absl::Status ParseSeedRange(const std::string& text, uint64_t* first, uint64_t* last);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_SIM_SWEEP_H_
