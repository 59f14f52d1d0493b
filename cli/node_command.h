// `blixard node`: runs one production node until SIGTERM/SIGINT
// (net/node/node_runtime.h). Flags are named like etcd's; `--config=FILE`
// gives the same settings as a text proto (net/node/node_config.proto)
// and excludes the other flags.
//
// Exit codes: 0 after a graceful stop; 2 for a bad flag or config, a port
// in use, or a data dir of another cluster or node (nothing was changed);
// 1 when the node could not run for another reason (a damaged store).
#ifndef BLIXARD_CLI_NODE_COMMAND_H_
#define BLIXARD_CLI_NODE_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

const Command& NodeCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_NODE_COMMAND_H_
