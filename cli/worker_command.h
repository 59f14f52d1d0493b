// `blixard worker list|drain|undrain`: the workers the scheduler places
// tasks and VMs on, read linearizably from the replicated worker records,
// and an operator's drain (SetWorkerStatus through the log).
//
//   blixard worker list
//   blixard worker drain ID
//   blixard worker undrain ID
//
// drain moves a worker to DRAINING: it takes no new work, its tasks run to
// their end, its VMs migrate away (core/sm/transitions.h: legal from
// ONLINE and BUSY). undrain moves a DRAINING worker back to ONLINE. Both
// read the worker first: one already where it was asked to go is left
// alone (exit 0, so a script may repeat either), and undrain refuses a
// worker that is not draining. The state machine would let an operator
// mark an OFFLINE or BUSY worker ONLINE, but those statuses belong to the
// leader's heartbeat watch and the worker; an operator who overrode them
// would send work to a machine that cannot take it.
//
// Output (--output=table): list prints ID STATUS CPU MEM_MB DISK_GB
// FEATURES ADDRESS, resources as reserved/capacity ("2/4"), statuses lower
// case; drain and undrain print "worker ID is now draining|online".
// --output=json: list prints a JSON array of WorkerRecords, drain and
// undrain the WorkerRecord after the change (cli/client_flags.h,
// ProtoJson: proto field names, 64-bit numbers as strings).
//
// Exit codes as for every client command (cli/client_flags.h): 1 when the
// cluster refuses ("blixard worker: RESULT_NOT_FOUND: worker 9 is not
// registered", an illegal transition) or undrain finds the worker not
// draining; 3 when no node answers in --timeout.
#ifndef BLIXARD_CLI_WORKER_COMMAND_H_
#define BLIXARD_CLI_WORKER_COMMAND_H_

#include <string>

#include "cli/command.h"
#include "core/proto/cluster.pb.h"

namespace blixard::cli {

const Command& WorkerCommand();

// "online", "draining": the name the table prints. Exposed for its test.
std::string WorkerStatusName(cluster::WorkerStatus status);

// One `worker list` table row (no newline). Exposed for its test.
std::string WorkerRow(const cluster::WorkerRecord& worker);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_WORKER_COMMAND_H_
