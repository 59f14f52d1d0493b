// `blixard member list|add|promote|remove`: the cluster's membership, read
// linearizably from the replicated member records and changed through the
// leader, which checks each change (core/host/membership.h) before it
// proposes it as a Raft conf change.
//
//   blixard member list
//   blixard member add --learner --peer_address=HOST:PORT [--id=N]
//                      [--data_dir=DIR] [--listen_client=HOST:PORT]
//   blixard member promote ID
//   blixard member remove ID
//
// New members always join as learners; `add` prints the exact `blixard
// node` command the new node must start with (its cluster id, every
// member's peer address, --initial_cluster_state=existing). Exit codes as
// for every client command (cli/client_flags.h): 1 when the leader refuses
// the change (and why: not caught up, an id used before, no quorum...).
#ifndef BLIXARD_CLI_MEMBER_COMMAND_H_
#define BLIXARD_CLI_MEMBER_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

const Command& MemberCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_MEMBER_COMMAND_H_
