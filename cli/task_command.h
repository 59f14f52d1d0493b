// `blixard task submit|get|list|cancel|logs`: batch tasks in the replicated
// scheduler. Writes (submit, cancel) go through the log with the client's
// request id, so a retried call applies once; reads are linearizable
// queries.
//
//   blixard task submit [--id=ID] [--cpu=N] [--memory_mb=M] [--disk_gb=D]
//                       [--features=F,G] [--task_timeout=60s]
//                       [--max_attempts=K] [--priority=P]
//                       [--wait [--wait_timeout=60s]] -- COMMAND [ARGS...]
//   blixard task get ID
//   blixard task list [--state=S,...] [--worker=N] [--limit=N]
//   blixard task cancel ID
//   blixard task logs ID
//
// submit: everything after `--` is the program and its arguments, run
// without a shell (`--` may be left out when no argument starts with '-').
// Without --id the id is "task-" and 16 random hex digits; submitting the
// same id with the same spec again is a no-op, which makes a retry by hand
// safe. Defaults: 1 CPU core, no memory or disk, no features, no time
// limit, 1 attempt, priority 0. --task_timeout is the task's own limit
// (whole seconds; counted from its assignment); --timeout, as for every
// client command, is how long the CLI waits for the cluster.
//
// Output (--output=table): submit prints "ID STATE"; get prints one
// "field value" line each, then the output tail; list prints a table (ID
// STATE WORKER ATTEMPT EXIT); cancel prints "ID cancelled". States are
// lower case (pending, assigned, running, succeeded, failed, timed_out,
// cancelled), as --state takes them. --output=json: submit, get and
// cancel print the TaskRecord as one JSON object, list a JSON array of
// them (cli/client_flags.h, ProtoJson: proto field names; 64-bit numbers
// are strings, output_tail is base64). logs prints the last result's
// output tail (at most 4 KiB) verbatim whatever --output says; the whole
// output is on the worker, in <data_dir>/tasks/<id>/output.log.
//
// submit --wait polls the task until it ends and prints it as `get` does.
//
// Exit codes (cli/client_flags.h): 0 ok, and for --wait the task
// SUCCEEDED; 1 the cluster refused ("blixard task: RESULT_NOT_FOUND:
// ..."), the waited-for task ended FAILED, TIMED_OUT or CANCELLED, or
// `logs` found no result yet; 2 usage; 3 the cluster was unavailable, or
// --wait_timeout passed before the task ended (it may still succeed).
#ifndef BLIXARD_CLI_TASK_COMMAND_H_
#define BLIXARD_CLI_TASK_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "core/proto/cluster.pb.h"

namespace blixard::cli {

const Command& TaskCommand();

// Parts of the command, exposed for its unit test.

// "running,failed" -> {TASK_RUNNING, TASK_FAILED}; sorted, unique. Names
// are the lower-case TaskState names without "TASK_" (any case; '-' reads
// as '_'). INVALID_ARGUMENT naming the first bad one; an empty list is
// one too.
absl::StatusOr<std::vector<cluster::TaskState>> ParseTaskStates(absl::string_view list);

// A --task_timeout as TaskSpec.timeout_secs. INVALID_ARGUMENT unless whole
// seconds from 0 (no limit) to the state machine's kTaskTimeoutSecsMax.
absl::StatusOr<uint64_t> TaskTimeoutSecs(absl::Duration timeout);

// "pending", "timed_out": the name the table prints and --state takes.
std::string TaskStateName(cluster::TaskState state);

// True for the states a task never leaves: SUCCEEDED, FAILED, TIMED_OUT,
// CANCELLED.
bool IsFinal(cluster::TaskState state);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_TASK_COMMAND_H_
