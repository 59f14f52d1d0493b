// The files a ProcessExecutor keeps per task, and what it reads from /proc
// to recognise a task's process again after the node process restarted
// (core/env.h: work belongs to the machine, not to the node process).
//
// Layout, one folder per task under the executor's data dir:
//
//   <data_dir>/tasks/<EncodePathComponent(id)>/
//     record        a TaskRecord (text). Written before Start returns ok,
//                   rewritten when the exit is seen, removed once the
//                   kExited is delivered: while it exists the task is in
//                   Running(), across node processes.
//     exit_code     written by the wrapper shell after the program ends
//                   (process_executor.h); its absence says the wrapper did
//                   not get that far (killed, or it could not set up).
//     output.log    the task's stdout and stderr; output.log.1 after a
//                   rotation (task_output.h).
//     work/         the task's working directory and HOME.
//
// Thread: none of this keeps state; call it from any one thread.
#ifndef BLIXARD_NET_EXEC_TASK_RECORD_H_
#define BLIXARD_NET_EXEC_TASK_RECORD_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/env.h"

namespace blixard::net {

inline constexpr char kTasksDirName[] = "tasks";
inline constexpr char kRecordFileName[] = "record";
inline constexpr char kExitCodeFileName[] = "exit_code";
inline constexpr char kWorkDirName[] = "work";

// A record is a few hundred bytes; anything larger is not one of ours.
inline constexpr size_t kRecordBytesMax = 16 * 1024;
// Longest encoded id: one path component must stay under NAME_MAX (255)
// with room for the ".tmp" of an atomic write next to it.
inline constexpr size_t kEncodedIdBytesMax = 240;

// What a new executor needs to find a task again, or to report its end.
struct TaskRecord {
  // The wrapper shell: session and process group leader of the task.
  pid_t pid = 0;
  // Field 22 of /proc/<pid>/stat when the task started: together with the
  // pid it names one process for the life of the machine, so a pid reused
  // by an unrelated process is never adopted (or killed).
  uint64_t proc_start_ticks = 0;
  // /proc/sys/kernel/random/boot_id at Start. A record from another boot
  // describes work that died with the machine (env.h: no event for it).
  std::string boot_id;
  // Start on CLOCK_MONOTONIC, which (unlike the node's Clock, whose epoch
  // is per process as far as env.h promises) means the same in every
  // process of one boot: a new executor maps it onto its own Clock, so an
  // adopted task's timeout still counts from its original Start.
  int64_t start_mono_us = 0;
  // Start on CLOCK_REALTIME: only to estimate how long a task ran that
  // ended while no executor watched (compared with exit_code's mtime).
  int64_t start_real_us = 0;
  int64_t timeout_us = 0;  // 0 = none
  // The task's cgroup v2 leaf, empty under rlimit isolation.
  std::string cgroup;
  // VMs only (vm_supervisor.h): the driver that started it, "qemu" or
  // "process", so a node restarted with another vm_driver setting still
  // drives it the way it was started. Empty for tasks.
  std::string vm_driver;

  // Set once an executor has seen the task end, so that a later one (after
  // a crash before the kExited was delivered) delivers the same kExited.
  bool exited = false;
  WorkEvent::Reason exit_reason = WorkEvent::Reason::kNone;
  int32_t exit_code = 0;
  int64_t duration_us = 0;
  // A line for the event's output tail (why it failed), may be empty.
  std::string exit_note;

  friend bool operator==(const TaskRecord& a, const TaskRecord& b);
};

// One "key value" line per field, versioned by a first line; byte strings
// (boot id, cgroup path, VM driver, note) go through EncodePathComponent so a record
// is always one line per field.
std::string SerializeTaskRecord(const TaskRecord& record);

// Errors: DATA_LOSS naming the problem (unknown version, unknown or
// repeated key, bad number, missing field, exited without a reason).
absl::StatusOr<TaskRecord> ParseTaskRecord(absl::string_view text);

// Bytes outside [A-Za-z0-9_-] become %XX (so "." and ".." cannot appear,
// nor '/', nor NUL): a task id becomes one safe path component, and
// DecodePathComponent gives it back.
std::string EncodePathComponent(absl::string_view bytes);
// nullopt for text EncodePathComponent never produces.
std::optional<std::string> DecodePathComponent(absl::string_view text);

// Replaces `path` with `contents` atomically: write `path`.tmp, then
// rename. No fsync, on purpose: these files must survive a crash of the
// node process, which the page cache already gives; a machine crash kills
// the tasks they describe, and a record from a previous boot is ignored
// (boot_id) whether it reached the disk whole, torn or not at all. So an
// fsync would cost the loop thread a disk flush and buy nothing.
// Errors: the ErrnoStatus of open/write/rename, naming the path.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents);

// The whole file. Errors: NOT_FOUND when it does not exist;
// OUT_OF_RANGE when it is longer than `bytes_max`; ErrnoStatus otherwise.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                          size_t bytes_max);

// What /proc/<pid>/stat says about a process.
struct ProcStat {
  char state = '?';  // field 3: 'R', 'S', 'Z' (exited, not yet reaped), ...
  pid_t pgid = 0;    // field 5
  uint64_t start_ticks = 0;  // field 22
};

// Errors: NOT_FOUND when no such process; DATA_LOSS when the file does
// not parse (the command name, field 2, may hold spaces and parentheses:
// the fields are counted after its last ')').
absl::StatusOr<ProcStat> ReadProcStat(pid_t pid);

// /proc/sys/kernel/random/boot_id without its newline.
absl::StatusOr<std::string> ReadBootId();

int64_t MonotonicNowMicros();
int64_t RealtimeNowMicros();

}  // namespace blixard::net

#endif  // BLIXARD_NET_EXEC_TASK_RECORD_H_
