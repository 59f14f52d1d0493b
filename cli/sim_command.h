// `blixard sim`: one seeded simulation of a faulty cluster (sim/simulation.h),
// with a summary a person can read and a replay line for a failure; or a sweep
// of seeds over worker processes (cli/sim_sweep.h), a determinism check, a
// shrink of a failing run into a regression script, or a recorded run.
// Exit codes: kExitOk when the run passed, kExitFailure when it found a
// violation, kExitUsage for a bad flag value.
#ifndef BLIXARD_CLI_SIM_COMMAND_H_
#define BLIXARD_CLI_SIM_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

// The `sim` entry of the command table, with its flags (`blixard sim --help`).
const Command& SimCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_SIM_COMMAND_H_
