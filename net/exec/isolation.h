// How a ProcessExecutor fences its tasks in: a cgroup v2 leaf per task when
// the node was given a delegated cgroup v2 subtree it can write, else
// rlimits only. Chosen once, when the executor is created, and logged by
// the node (Isolation::description).
//
// cgroup v2 (kCgroupV2): every task gets <cgroup_root>/task-<encoded id>,
// with memory.max = memory_mb MiB and cpu.max = vcpus cores when the spec
// sets them and the controller is enabled, and the task's wrapper shell
// moves itself into the leaf before the program starts (so nothing of the
// task ever runs outside it). Stop, timeout and the end of the task write
// cgroup.kill, which kills every process in the leaf, including those
// that left the task's process group or session (setsid): the one thing a
// process-group kill cannot reach. Requirements, checked by the probe:
// cgroup_root is on a cgroup2 mount, writable by this process, leaves can
// be made in it and have cgroup.kill (Linux >= 5.14). For the wrapper to
// move itself into a leaf, the node must itself run inside cgroup_root's
// delegated subtree (a leaf of its own, as systemd's Delegate= sets up),
// and cgroup_root must hold no process itself (cgroup v2's "no internal
// processes" rule would stop controllers from being enabled for leaves).
//
// rlimits (kRlimits): the wrapper shell sets RLIMIT_CORE = 0 (a crashing
// task must not fill the disk with cores) and RLIMIT_NOFILE = the
// executor's task_open_files_max. No RLIMIT_AS: address-space limits break
// many ordinary programs (JITs, sanitizers, large mmaps) and env.h calls a
// task's memory informational. Tasks are killed by process group, so a
// task's child that calls setsid() itself escapes Stop and timeout: the
// documented limit of this mode.
//
// Thread: stateless; call it from the loop thread.
#ifndef BLIXARD_NET_EXEC_ISOLATION_H_
#define BLIXARD_NET_EXEC_ISOLATION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blixard::net {

enum class IsolationKind : uint8_t { kRlimits = 0, kCgroupV2 = 1 };

absl::string_view IsolationKindName(IsolationKind kind);

struct Isolation {
  IsolationKind kind = IsolationKind::kRlimits;
  // kCgroupV2 only: the delegated subtree, and which limits its leaves
  // take (a controller the parent does not offer is simply not applied).
  std::string cgroup_root;
  bool memory_controller = false;
  bool cpu_controller = false;
  // One line for the node to log at start: which mode and why, e.g.
  // "rlimits (RLIMIT_CORE=0, RLIMIT_NOFILE): cgroup_root /x is not on a
  // cgroup2 mount".
  std::string description;
};

// Decides the mode for `cgroup_root` (empty: none given). Never fails: a
// root that does not meet the requirements above yields kRlimits, and the
// description says which requirement failed. Makes and removes one probe
// leaf, and tries to enable the memory and cpu controllers for the root's
// children (cgroup.subtree_control).
Isolation ProbeIsolation(const std::string& cgroup_root);

// Makes the leaf for one task and writes its limits; returns its path.
// `leaf_name` must be one path component. An empty leftover of the same
// name (a crash between the task's end and its cleanup) is removed first.
// Errors: the ErrnoStatus of mkdir/open/write naming the file; the leaf
// is removed again on error. REQUIRES: isolation.kind == kCgroupV2.
absl::StatusOr<std::string> CreateTaskCgroup(const Isolation& isolation,
                                             absl::string_view leaf_name,
                                             uint32_t vcpus,
                                             uint64_t memory_mb);

// SIGKILLs every process in the leaf (writes "1" to cgroup.kill).
// Errors: ErrnoStatus naming the file (NOT_FOUND when the leaf is gone).
absl::Status KillTaskCgroup(const std::string& leaf);

// Removes the leaf. Fails (ErrnoStatus of rmdir: EBUSY -> INTERNAL) while
// a process is still in it, e.g. right after KillTaskCgroup, which does
// not wait for the kill to finish: callers retry later. NOT_FOUND when the
// leaf is already gone.
absl::Status RemoveTaskCgroup(const std::string& leaf);

}  // namespace blixard::net

#endif  // BLIXARD_NET_EXEC_ISOLATION_H_
