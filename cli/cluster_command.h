// `blixard cluster status`: every endpoint's own view (member, role, term,
// leader, commit and applied index, lag behind the most advanced), as a
// table or JSON. Exit 0 when every endpoint answered, 3 when none did, 1
// when some did not (their rows say unreachable).
#ifndef BLIXARD_CLI_CLUSTER_COMMAND_H_
#define BLIXARD_CLI_CLUSTER_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

const Command& ClusterCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_CLUSTER_COMMAND_H_
