#include "core/sm/transitions.h"

#include <cstddef>

namespace blixard::sm {
namespace {

using cluster::VmObservedState;
using cluster::WorkerStatus;

struct WorkerEdge {
  WorkerStatus from;
  WorkerStatus to;
};

// The one table of legal worker status transitions.
constexpr WorkerEdge kWorkerTransitions[] = {
    {cluster::WORKER_ONLINE, cluster::WORKER_BUSY},
    {cluster::WORKER_ONLINE, cluster::WORKER_DRAINING},
    {cluster::WORKER_ONLINE, cluster::WORKER_OFFLINE},
    {cluster::WORKER_ONLINE, cluster::WORKER_FAILED},
    {cluster::WORKER_BUSY, cluster::WORKER_ONLINE},
    {cluster::WORKER_BUSY, cluster::WORKER_DRAINING},
    {cluster::WORKER_BUSY, cluster::WORKER_OFFLINE},
    {cluster::WORKER_BUSY, cluster::WORKER_FAILED},
    {cluster::WORKER_DRAINING, cluster::WORKER_ONLINE},
    {cluster::WORKER_DRAINING, cluster::WORKER_OFFLINE},
    {cluster::WORKER_DRAINING, cluster::WORKER_FAILED},
    {cluster::WORKER_OFFLINE, cluster::WORKER_ONLINE},
    {cluster::WORKER_OFFLINE, cluster::WORKER_FAILED},
};

struct VmEdge {
  VmObservedState from;
  VmObservedState to;
};

constexpr VmEdge kVmObservedTransitions[] = {
    {cluster::VM_OBSERVED_UNSPECIFIED, cluster::VM_CREATING},
    {cluster::VM_OBSERVED_UNSPECIFIED, cluster::VM_FAILED},
    {cluster::VM_CREATING, cluster::VM_STARTING},
    {cluster::VM_CREATING, cluster::VM_STOPPED},
    {cluster::VM_CREATING, cluster::VM_FAILED},
    {cluster::VM_STARTING, cluster::VM_RUNNING},
    {cluster::VM_STARTING, cluster::VM_STOPPING},
    {cluster::VM_STARTING, cluster::VM_FAILED},
    {cluster::VM_RUNNING, cluster::VM_STOPPING},
    {cluster::VM_RUNNING, cluster::VM_FAILED},
    {cluster::VM_STOPPING, cluster::VM_STOPPED},
    {cluster::VM_STOPPING, cluster::VM_FAILED},
    {cluster::VM_STOPPED, cluster::VM_STARTING},
    {cluster::VM_STOPPED, cluster::VM_FAILED},
    {cluster::VM_FAILED, cluster::VM_STARTING},
    {cluster::VM_FAILED, cluster::VM_STOPPED},
};

}  // namespace

bool IsLegalWorkerTransition(WorkerStatus from, WorkerStatus to) {
  for (const WorkerEdge& edge : kWorkerTransitions) {
    if (edge.from == from && edge.to == to) return true;
  }
  return false;
}

bool IsLegalVmObservedTransition(VmObservedState from, VmObservedState to) {
  for (const VmEdge& edge : kVmObservedTransitions) {
    if (edge.from == from && edge.to == to) return true;
  }
  return false;
}

absl::string_view WorkerStatusName(WorkerStatus status) {
  switch (status) {
    case cluster::WORKER_ONLINE:
      return "ONLINE";
    case cluster::WORKER_BUSY:
      return "BUSY";
    case cluster::WORKER_DRAINING:
      return "DRAINING";
    case cluster::WORKER_OFFLINE:
      return "OFFLINE";
    case cluster::WORKER_FAILED:
      return "FAILED";
    default:
      return "UNSPECIFIED";
  }
}

absl::string_view TaskStateName(cluster::TaskState state) {
  switch (state) {
    case cluster::TASK_PENDING:
      return "PENDING";
    case cluster::TASK_ASSIGNED:
      return "ASSIGNED";
    case cluster::TASK_RUNNING:
      return "RUNNING";
    case cluster::TASK_SUCCEEDED:
      return "SUCCEEDED";
    case cluster::TASK_FAILED:
      return "FAILED";
    case cluster::TASK_TIMED_OUT:
      return "TIMED_OUT";
    case cluster::TASK_CANCELLED:
      return "CANCELLED";
    default:
      return "UNSPECIFIED";
  }
}

absl::string_view VmObservedName(VmObservedState state) {
  switch (state) {
    case cluster::VM_CREATING:
      return "CREATING";
    case cluster::VM_STARTING:
      return "STARTING";
    case cluster::VM_RUNNING:
      return "RUNNING";
    case cluster::VM_STOPPING:
      return "STOPPING";
    case cluster::VM_STOPPED:
      return "STOPPED";
    case cluster::VM_FAILED:
      return "FAILED";
    default:
      return "UNSPECIFIED";
  }
}

absl::string_view VmDesiredName(cluster::VmDesiredState state) {
  switch (state) {
    case cluster::VM_DESIRED_STOPPED:
      return "STOPPED";
    case cluster::VM_DESIRED_RUNNING:
      return "RUNNING";
    default:
      return "UNSPECIFIED";
  }
}

bool IsTerminal(cluster::TaskState state) {
  return state == cluster::TASK_SUCCEEDED || state == cluster::TASK_FAILED ||
         state == cluster::TASK_TIMED_OUT || state == cluster::TASK_CANCELLED;
}

}  // namespace blixard::sm
