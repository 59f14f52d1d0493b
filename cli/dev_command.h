// `blixard dev --nodes=N`: a local cluster of real `blixard node`
// processes for development (like `nomad agent -dev`): temp data dirs, free
// loopback ports, one line `endpoints: HOST:PORT,...` with the client
// addresses, and every node stopped (SIGTERM, by pid) on Ctrl-C or SIGTERM.
//
// Exit codes: 0 after a requested stop; 1 when a node exited on its own
// (the others are stopped; its log is named); 2 for a bad flag.
#ifndef BLIXARD_CLI_DEV_COMMAND_H_
#define BLIXARD_CLI_DEV_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

const Command& DevCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_DEV_COMMAND_H_
