// `blixard version`: the release and the protocol version a node speaks, so
// operators can tell which binaries can form a cluster. Takes no flags and no
// arguments.
#ifndef BLIXARD_CLI_VERSION_COMMAND_H_
#define BLIXARD_CLI_VERSION_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

// The `version` entry of the command table.
const Command& VersionCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_VERSION_COMMAND_H_
