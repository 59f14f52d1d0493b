// `blixard vm create|start|stop|delete|migrate|list|get`: VMs as the
// cluster records them. The leader places a VM on a worker with room; the
// worker's agent runs it (net/exec: QEMU, or the process driver) and
// reports what it observes, one legal transition at a time.
//
//   blixard vm create NAME --image=PATH [--vcpus=N] [--memory_mb=M]
//                     [--disk_gb=D] [--features=F,G] [--start]
//   blixard vm start NAME | stop NAME | delete NAME
//   blixard vm migrate NAME [--to=WORKER]     (cold: stop, move, start)
//   blixard vm list | get NAME
//
// Output: a table, or --output=json (protobuf's JSON mapping of VmRecord).
// Exit codes as for every client command (cli/client_flags.h).
#ifndef BLIXARD_CLI_VM_COMMAND_H_
#define BLIXARD_CLI_VM_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

const Command& VmCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_VM_COMMAND_H_
