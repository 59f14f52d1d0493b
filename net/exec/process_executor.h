// ProcessExecutor: the production runtime's blixard::Executor (core/env.h):
// each task is a real process tree in a session of its own, watched from
// the node's EventLoop through a pidfd. No threads, no SIGCHLD handler.
// VMs (WorkKind::kVm) are QEMU processes driven through QMP, or
// placeholder processes where there is no QEMU: every kVm call goes to the
// executor's VmSupervisor, whose header (vm_supervisor.h) is their
// contract; vm_driver.h says how the driver is chosen. What follows is
// about tasks; events of both kinds share one queue and one delivery.
//
// How a task runs. Start spawns (posix_spawn, POSIX_SPAWN_SETSID) a small
// wrapper shell (options.shell, /bin/sh) which sets the rlimits, joins the
// task's cgroup when there is one (isolation.h), runs the program with its
// arguments, then writes the program's exit status to the task's
// exit_code file and exits with it. The wrapper is the session and process
// group leader, so the program and everything it starts share the group
// the executor kills. Why a wrapper: the exit status of a process is only
// available to its parent, and after a crash of the node process the
// adopting executor is not the parent; the file carries the status across
// (the "exit-code wrapper"). The wrapper runs no code of ours beyond a
// fixed script (kWrapperScript in the .cc), and is also where limits and
// the cgroup are applied before the program's first instruction, which
// posix_spawn cannot do.
//   - Program lookup: a command containing '/' is a path (a relative one
//     is relative to the task's working directory); one without is looked
//     up in options.task_path, as execvp would. The executor checks that
//     the program exists and is executable before spawning, to report a
//     clear reason.
//   - Working directory: <data_dir>/tasks/<encoded id>/work (created; kept
//     for a later run of the same id; cleaning old ones is not done here).
//   - Environment: exactly PATH=options.task_path, HOME=<working dir>,
//     BLIXARD_TASK_ID=<id>. WorkSpec has no environment field; per-task
//     variables come when it grows one.
//   - stdin is /dev/null; stdout and stderr both go to
//     <data_dir>/tasks/<id>/output.log, size-rotated (task_output.h says why
//     a file and not a pipe, and how rotation loses at most a small window).
//     The kExited event's output_tail is the last kOutputTailBytesMax bytes
//     of it, read when the exit is seen.
//
// Events, as env.h says: kRunning once spawned, then exactly one kExited;
// never inside Start, Stop or SetCallback (they go through a loop timer).
// kExited carries:
//   - kFinished: the wrapper recorded the program's exit status; exit_code
//     is it (a program killed by signal N reads 128 + N, the shell's way).
//   - kTimedOut / kStopped: the executor killed it (see "Killing").
//     exit_code is the program's recorded status (143 for a program that
//     died of the SIGTERM), else 128 + the signal that killed the wrapper
//     (137 after the SIGKILL), or -1 when unknown (a task adopted after a
//     crash, whose wrapper we are not the parent of).
//   - kFailed: it could not start (no such program: a kExited without a
//     kRunning, delivered later like any event; Start still returns ok,
//     since env.h gives Start no error for it), or the wrapper ended
//     without recording a status (killed from outside, or its setup
//     failed), or it was lost while no executor watched. The reason is a
//     "[blixard] ..." line at the end of output_tail.
// duration_us runs from Start to when the exit was seen, on the loop's
// clock; for a task that ended while no executor ran, it is estimated from
// the exit_code file's mtime (wall clock, best effort).
//
// Killing. At timeout_us after Start (kTimedOut) or on Stop (kStopped):
// SIGTERM to the task's process group, then SIGKILL to the group (and
// cgroup.kill with a cgroup) after options.kill_grace_us. The wrapper
// itself outlives the SIGTERM (it traps it, which its program does not
// inherit), so the grace is the program's to use. When the wrapper
// (the group leader) ends, for whatever reason, the rest of the group is
// SIGKILLed before the wrapper is reaped, so a task leaves no background
// processes behind; the leader's pid cannot be reused until it is reaped,
// so the group kill cannot hit a stranger. Limits, without a cgroup: a
// descendant that calls setsid() leaves the group and survives; and for
// a task adopted after a crash the old wrapper is reaped by init, not by
// us, so that last group kill has a (tiny) pid-reuse window. cgroup v2
// has neither limit (isolation.h).
//
// Restart safety (env.h: work outlives the node process). Before Start
// returns ok, the task's record (task_record.h: pid, /proc start time,
// boot id, start on CLOCK_MONOTONIC, timeout, cgroup) is in place; it is
// rewritten with the outcome when the exit is seen and removed just before
// the kExited is handed to the callback. Destroying a ProcessExecutor is a
// crash as far as tasks go: they keep running, and nothing is delivered.
// Create() then reads every record in data_dir:
//   - from another boot: the work died with the machine; dropped, no event;
//   - with an outcome: its kExited is delivered again (after SetCallback);
//   - pid alive with the recorded start time: adopted. It is in Running(),
//     a kRunning is delivered (the old Host may or may not have heard one),
//     its timeout still counts from the original Start, Stop works, and its
//     exit is seen through a pidfd like any other;
//   - pid gone (or reused: another start time): one kExited, kFinished
//     with the exit_code file's status, or kFailed "lost while the node
//     was down" without one.
// The window: a crash between removing a record and the callback's return
// loses that kExited (at most once, never twice).
//
// Thread: the loop thread only (every method, every callback). The loop
// must outlive the executor. REQUIRES: the executor is not destroyed from
// inside its own callback.
//
//   ProcessExecutorOptions options;
//   options.data_dir = "/var/lib/blixard/exec";
//   options.logger = &logger;
//   ASSIGN_OR_RETURN(std::unique_ptr<ProcessExecutor> executor,
//                    ProcessExecutor::Create(loop, options));
//   logger.Info("executor isolation: ", executor->isolation().description);
//   executor->SetCallback([&](const WorkEvent& e) { host.OnWork(e); });
#ifndef BLIXARD_NET_EXEC_PROCESS_EXECUTOR_H_
#define BLIXARD_NET_EXEC_PROCESS_EXECUTOR_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/logger.h"
#include "core/env.h"
#include "net/exec/isolation.h"
#include "net/exec/task_record.h"
#include "net/exec/vm_driver.h"
#include "net/exec/vm_supervisor.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {

struct ProcessExecutorOptions {
  // Where task folders live (created when missing). REQUIRES: not empty.
  // One executor per data dir at a time.
  std::string data_dir;
  // A delegated cgroup v2 subtree for task leaves; empty or unusable:
  // rlimits only (isolation.h says what "usable" takes).
  std::string cgroup_root;
  // From SIGTERM to SIGKILL on Stop and timeout. In (0, kKillGraceMaxUs].
  int64_t kill_grace_us = 5 * kMicrosPerSecond;
  // output.log is rotated once past this. In [kOutputTailBytesMax, 1 GiB].
  uint64_t output_file_bytes_max = 8 * 1024 * 1024;
  // How often running tasks' output is checked for rotation.
  // In [1 ms, 1 hour].
  int64_t output_check_interval_us = 1 * kMicrosPerSecond;
  // PATH for tasks, and where a bare program name is looked up. Absolute
  // directories, ':'-separated. REQUIRES: not empty.
  std::string task_path = "/usr/local/bin:/usr/bin:/bin";
  // The wrapper shell: a POSIX sh with `ulimit -c` and `ulimit -n`.
  // REQUIRES: an absolute path to an executable.
  std::string shell = "/bin/sh";
  // RLIMIT_NOFILE (soft and hard) for tasks, lowered to the node's own
  // hard limit when that is less. In [16, 1 << 20].
  uint64_t task_open_files_max = 1024;
  // REQUIRES: not null; outlives the executor.
  Logger* logger = nullptr;

  // VMs (vm_driver.h, vm_supervisor.h). The driver: "qemu", "process" or
  // "auto" (qemu when both QEMU binaries are in task_path).
  std::string vm_driver = "auto";
  // Looked up in task_path unless they hold a '/'.
  std::string qemu_binary = "qemu-system-x86_64";
  std::string qemu_img_binary = "qemu-img";
  // From Start (or adoption) to QMP saying "running"; past it the VM is
  // killed and fails. In (0, kVmGraceMaxUs].
  int64_t vm_boot_timeout_us = 120 * kMicrosPerSecond;
  // Stop: system_powerdown, then quit after this. In (0, kVmGraceMaxUs].
  int64_t vm_powerdown_grace_us = 30 * kMicrosPerSecond;
  // Stop: quit (or SIGTERM), then SIGKILL after this. In (0,
  // kVmGraceMaxUs].
  int64_t vm_quit_grace_us = 10 * kMicrosPerSecond;
  // For a spec that leaves them 0. vcpus in [1, kVmVcpusMax], memory in
  // [16, kVmMemoryMbMax] MiB.
  uint32_t vm_default_vcpus = 1;
  uint64_t vm_default_memory_mb = 512;

  static constexpr int64_t kKillGraceMaxUs = 600 * kMicrosPerSecond;
  static constexpr int64_t kVmGraceMaxUs = 3600 * kMicrosPerSecond;

  // INVALID_ARGUMENT naming the first bad setting.
  absl::Status Validate() const;
};

class ProcessExecutor final : public Executor {
 public:
  // Validates the options, checks the kernel has pidfds (UNIMPLEMENTED
  // below Linux 5.3) and that the shell is executable (NOT_FOUND /
  // PERMISSION_DENIED), creates data_dir/tasks and data_dir/vms, probes
  // the isolation mode and the VM driver (NOT_FOUND for vm_driver=qemu
  // without QEMU), and recovers the records in data_dir (see "Restart
  // safety", and vm_supervisor.h's): adopted and exited tasks and VMs are
  // in Running() when this returns, their events wait for SetCallback.
  // Errors: INVALID_ARGUMENT for bad options; the
  // ErrnoStatus of mkdir/opendir/pidfd_open/reading boot_id, naming the
  // path. A record that does not parse is dropped with a warning, not an
  // error: it can only be a torn write from before a machine crash.
  // REQUIRES: loop thread; loop not null and outlives the executor.
  static absl::StatusOr<std::unique_ptr<ProcessExecutor>> Create(
      EventLoop* loop, ProcessExecutorOptions options);

  // A crash, for tasks and VMs: they keep running, their records stay, and
  // queued events are dropped (a new executor on the same data dir
  // delivers them again). Unregisters the pidfds and cancels the timers.
  ~ProcessExecutor() override;

  ProcessExecutor(const ProcessExecutor&) = delete;
  ProcessExecutor& operator=(const ProcessExecutor&) = delete;

  // env.h. REQUIRES (CHECKed): no callback registered; callback not empty.
  void SetCallback(Callback callback) override;

  // env.h's errors (kRunningMax counts tasks and VMs together), and:
  // INVALID_ARGUMENT also for an id whose encoded form is longer than
  // kEncodedIdBytesMax, a NUL byte in the command or an argument, or
  // timeout_us > Timers::kDelayMaxUs; for kVm, vm_supervisor.h's; an
  // operating error (the ErrnoStatus of mkdir, open,
  // posix_spawn, pidfd_open, the record write, e.g. RESOURCE_EXHAUSTED at
  // the process or fd limit), after which nothing runs (a spawned wrapper
  // is killed and reaped) and no event follows. A program that does not
  // exist is not an error here: see kFailed above.
  absl::Status Start(const WorkSpec& spec) override;

  // env.h.
  bool Stop(WorkKind kind, absl::string_view id) override;

  std::vector<std::string> Running(WorkKind kind) const override;

  // The mode chosen at Create, with a line for the node's start-up log.
  const Isolation& isolation() const { return isolation_; }

  // The task's wrapper pid (= its process group id) while its process is
  // watched; nullopt otherwise. For logs and tests.
  std::optional<pid_t> TaskPid(absl::string_view id) const;

  // The VM driver chosen at Create, with a line for the start-up log.
  const VmHost& vm_host() const { return vms_->host(); }
  // QEMU's (or the placeholder's) pid while watched, and the VM's folder.
  // For logs and tests.
  std::optional<pid_t> VmPid(absl::string_view name) const {
    return vms_->VmPid(name);
  }
  std::string VmDir(absl::string_view name) const { return vms_->VmDir(name); }

  void CheckInvariants() const;

 private:
  struct Task {
    enum class Phase : uint8_t {
      kRunning = 0,   // watched through its pidfd
      kStopping = 1,  // SIGTERM sent (timeout or Stop); SIGKILL armed
      kExited = 2,    // its kExited is queued (or waits for a callback)
    };
    std::string id;
    std::string dir;  // <data_dir>/tasks/<encoded id>
    Phase phase = Phase::kRunning;
    WorkEvent::Reason stop_reason = WorkEvent::Reason::kNone;  // kStopping
    // False only for a start that failed before anything was spawned: such
    // a task has no record, no process and no folder of its own.
    bool has_record = false;
    TaskRecord record;        // as on disk
    MonoMicros start_us = 0;  // on the loop's clock
    UniqueFd pidfd;           // valid (and in the loop) unless kExited
    EventLoop::TimerHandle timeout_timer = 0;
    EventLoop::TimerHandle kill_timer = 0;  // kStopping only
  };

  ProcessExecutor(EventLoop* loop, ProcessExecutorOptions options);

  absl::Status Init();
  void Recover();
  void RecoverOne(const std::string& dir_name);
  void Adopt(std::unique_ptr<Task> task, UniqueFd pidfd, bool exited);

  // kVm: capacity, then the VmSupervisor.
  absl::Status StartVm(const WorkSpec& spec);

  // Start's steps.
  absl::Status ValidateTaskSpec(const WorkSpec& spec) const;
  // Empty when the program can be run, else why not.
  std::string ProgramProblem(const WorkSpec& spec,
                             const std::string& work_dir) const;
  absl::Status PrepareTaskDir(const std::string& dir) const;
  absl::StatusOr<pid_t> Spawn(const WorkSpec& spec, const std::string& dir,
                              const std::string& cgroup);

  absl::Status Watch(Task* task);
  void OnTimeout(const std::string& id);
  void OnKillGraceOver(const std::string& id);
  void OnProcessExit(const std::string& id);
  void BeginStopping(Task* task, WorkEvent::Reason reason);
  void SignalGroup(const Task& task, int signal);
  void Unwatch(Task* task);
  void DropCgroup(const std::string& cgroup);
  void QueueExited(Task* task);

  void Queue(WorkEvent event);
  void ScheduleFlush();
  void Flush();
  void ArmMaintenance();
  void Maintain();

  Task* Find(absl::string_view id) const;
  std::string TaskDir(absl::string_view id) const;

  EventLoop* const loop_;
  const ProcessExecutorOptions options_;
  Logger* const logger_;
  Isolation isolation_;
  std::string boot_id_;
  std::string tasks_dir_;
  uint64_t task_open_files_max_ = 0;  // after the node's hard limit

  Callback callback_;
  absl::btree_map<std::string, std::unique_ptr<Task>> tasks_;
  // Events not yet delivered, in order: at most two per task.
  std::deque<WorkEvent> pending_;
  EventLoop::TimerHandle flush_timer_ = 0;
  EventLoop::TimerHandle maintenance_timer_ = 0;
  // Every kVm call goes here; its events go through Queue.
  std::unique_ptr<VmSupervisor> vms_;
  // Leaves whose rmdir failed (a process was still dying), retried by
  // Maintain() a bounded number of times.
  absl::btree_map<std::string, int> cgroups_to_remove_;
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_EXEC_PROCESS_EXECUTOR_H_
