// The tables of legal state transitions, in one place:
//   - worker status (SetWorkerStatus, WorkerLost), and
//   - a VM's observed state as its agent reports it (VmObserved).
// Apply consults these and nothing else; tests hold an independent copy.
//
// Worker status (from -> to):
//   ONLINE   -> BUSY, DRAINING, OFFLINE, FAILED
//   BUSY     -> ONLINE, DRAINING, OFFLINE, FAILED
//   DRAINING -> ONLINE, OFFLINE, FAILED
//   OFFLINE  -> ONLINE, FAILED
//   FAILED   -> (none: a failed machine is removed and registered again)
// A worker enters ONLINE by RegisterWorker. Self-transitions are illegal.
//
// VM observed state, for one placement (generation):
//   UNSPECIFIED -> CREATING, FAILED
//   CREATING    -> STARTING, STOPPED, FAILED
//   STARTING    -> RUNNING, STOPPING, FAILED
//   RUNNING     -> STOPPING, FAILED
//   STOPPING    -> STOPPED, FAILED
//   STOPPED     -> STARTING, FAILED
//   FAILED      -> STARTING, STOPPED
// A new placement starts again from UNSPECIFIED.
#ifndef BLIXARD_CORE_SM_TRANSITIONS_H_
#define BLIXARD_CORE_SM_TRANSITIONS_H_

#include "absl/strings/string_view.h"
#include "core/proto/cluster.pb.h"

namespace blixard::sm {

bool IsLegalWorkerTransition(cluster::WorkerStatus from,
                             cluster::WorkerStatus to);
bool IsLegalVmObservedTransition(cluster::VmObservedState from,
                                 cluster::VmObservedState to);

// Short names for messages: "ONLINE", "RUNNING", ...
absl::string_view WorkerStatusName(cluster::WorkerStatus status);
absl::string_view TaskStateName(cluster::TaskState state);
absl::string_view VmObservedName(cluster::VmObservedState state);
absl::string_view VmDesiredName(cluster::VmDesiredState state);

bool IsTerminal(cluster::TaskState state);

}  // namespace blixard::sm

#endif  // BLIXARD_CORE_SM_TRANSITIONS_H_
