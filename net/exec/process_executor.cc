// Start, Stop, timeouts and exits. Event delivery and output rotation are
// in process_executor_events.cc; Create and recovery after a crash of the
// node process in process_executor_recovery.cc.
#include "net/exec/process_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"
#include "net/exec/spawn.h"
#include "net/exec/task_output.h"

namespace blixard::net {
namespace {

// The exit-code wrapper (see the header). $1: the exit_code file; $2: the
// leaf's cgroup.procs, or empty; $3: RLIMIT_NOFILE; then the program and
// its arguments.
//   - The status goes to the file only once the program has ended, so a
//     file that exists holds a whole status (the executor reads it only
//     after the wrapper is gone).
//   - Exit 125 marks a failed setup: no status is recorded, so the task
//     reads as kFailed, and the reason is in the output.
//   - The no-op TERM trap keeps the wrapper alive through the SIGTERM sent
//     to the group (a caught signal, unlike an ignored one, is reset to
//     the default in the program), so the kill grace belongs to the
//     program, and the status of a program that ends on SIGTERM (143 for a
//     default death) is still recorded.
//   - The wrapper's own stderr is /dev/null (the output file stays on fd 3
//     for the program), so the shell's job reports ("Terminated") never
//     reach the task's output; the program runs in a subshell that execs
//     it, so the redirection back to fd 2 happens in the program's process
//     only.
constexpr char kWrapperScript[] =
    "trap : TERM\n"
    "exec 3>&2 2>/dev/null\n"
    "f=$1 g=$2 n=$3\n"
    "shift 3\n"
    "ulimit -c 0 && ulimit -n \"$n\" || "
    "{ echo \"[blixard] could not set rlimits\" >&3; exit 125; }\n"
    "if [ -n \"$g\" ]; then echo $$ > \"$g\" || "
    "{ echo \"[blixard] could not join cgroup $g\" >&3; exit 125; }; fi\n"
    "(exec \"$@\" 2>&3 3>&-)\n"
    "c=$?\n"
    "echo \"$c\" > \"$f\"\n"
    "exit \"$c\"\n";
// The wrapper's $0, which the shell's own error messages start with.
constexpr char kWrapperName[] = "blixard-task";

int PidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

// Releases a posix_spawn attribute or file-action object on every path.

}  // namespace

ProcessExecutor::Task* ProcessExecutor::Find(absl::string_view id) const {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : it->second.get();
}

std::string ProcessExecutor::TaskDir(absl::string_view id) const {
  return absl::StrCat(tasks_dir_, "/", EncodePathComponent(id));
}

void ProcessExecutor::SetCallback(Callback callback) {
  CHECK(!callback_) << "SetCallback: a callback is already registered";
  CHECK(callback) << "SetCallback: empty callback";
  callback_ = std::move(callback);
  ScheduleFlush();
}

absl::Status ProcessExecutor::ValidateTaskSpec(const WorkSpec& spec) const {
  if (spec.id.empty()) return absl::InvalidArgumentError("empty task id");
  if (spec.command.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", spec.id, ": empty command"));
  }
  if (spec.timeout_us < 0 || spec.timeout_us > Timers::kDelayMaxUs) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", spec.id, ": timeout_us ", spec.timeout_us,
                     " is outside [0, ", Timers::kDelayMaxUs, "]"));
  }
  if (EncodePathComponent(spec.id).size() > kEncodedIdBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("task id '", spec.id, "' is too long (encoded over ",
                     kEncodedIdBytesMax, " bytes)"));
  }
  bool has_nul = spec.command.find('\0') != std::string::npos;
  for (const std::string& arg : spec.args) {
    has_nul = has_nul || arg.find('\0') != std::string::npos;
  }
  if (has_nul) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", spec.id, ": NUL byte in command or arguments"));
  }
  return absl::OkStatus();
}

std::string ProcessExecutor::ProgramProblem(const WorkSpec& spec,
                                            const std::string& work_dir) const {
  const std::string& command = spec.command;
  if (command.find('/') != std::string::npos) {
    const std::string path =
        command[0] == '/' ? command : absl::StrCat(work_dir, "/", command);
    if (IsExecutableFile(path)) return "";
    return absl::StrCat("no such program '", command,
                        "' (not an executable file)");
  }
  for (absl::string_view dir :
       absl::StrSplit(options_.task_path, ':', absl::SkipEmpty())) {
    if (IsExecutableFile(absl::StrCat(dir, "/", command))) return "";
  }
  return absl::StrCat("no such program '", command, "' in PATH ",
                      options_.task_path);
}

absl::Status ProcessExecutor::PrepareTaskDir(const std::string& dir) const {
  for (const std::string& path : {dir, absl::StrCat(dir, "/", kWorkDirName)}) {
    if (mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir", errno, path);
    }
  }
  // What an earlier run of this id left: its status must not be taken for
  // this run's, and its output does not belong in this run's tail.
  for (const char* name :
       {kExitCodeFileName, kOutputFileName, kOutputRotatedFileName}) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("unlink", errno, path);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<pid_t> ProcessExecutor::Spawn(const WorkSpec& spec,
                                             const std::string& dir,
                                             const std::string& cgroup) {
  const std::string work_dir = absl::StrCat(dir, "/", kWorkDirName);
  std::vector<std::string> argv = {
      options_.shell,
      "-c",
      kWrapperScript,
      kWrapperName,
      absl::StrCat(dir, "/", kExitCodeFileName),
      cgroup.empty() ? "" : absl::StrCat(cgroup, "/cgroup.procs"),
      absl::StrCat(task_open_files_max_),
      spec.command};
  argv.insert(argv.end(), spec.args.begin(), spec.args.end());
  std::vector<std::string> env = {absl::StrCat("PATH=", options_.task_path),
                                  absl::StrCat("HOME=", work_dir),
                                  absl::StrCat("BLIXARD_TASK_ID=", spec.id)};
  return SpawnSession(options_.shell, std::move(argv), std::move(env),
                      absl::StrCat(dir, "/", kOutputFileName), work_dir,
                      absl::StrCat("task ", spec.id));
}

absl::Status ProcessExecutor::Start(const WorkSpec& spec) {
  if (spec.kind == WorkKind::kVm) return StartVm(spec);
  if (absl::Status s = ValidateTaskSpec(spec); !s.ok()) return s;
  if (Find(spec.id) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("task ", spec.id,
                     " is running (or its exit is not "
                     "delivered yet)"));
  }
  if (tasks_.size() + vms_->size() >= kRunningMax) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "task ", spec.id, ": ", kRunningMax, " tasks and VMs already run"));
  }
  auto task = std::make_unique<Task>();
  task->id = spec.id;
  task->dir = TaskDir(spec.id);
  task->start_us = loop_->clock().NowMicros();

  const std::string problem =
      ProgramProblem(spec, absl::StrCat(task->dir, "/", kWorkDirName));
  if (!problem.empty()) {
    // Nothing to run: one kExited, later, like any event (env.h gives
    // Start no error for it). No record: nothing ran that a restarted
    // node would need to know about.
    task->phase = Task::Phase::kExited;
    Task* t = tasks_.emplace(spec.id, std::move(task)).first->second.get();
    WorkEvent event;
    event.id = t->id;
    event.state = WorkEvent::State::kExited;
    event.reason = WorkEvent::Reason::kFailed;
    event.exit_code = -1;
    event.output_tail = AppendNote("", problem, kOutputTailBytesMax);
    Queue(std::move(event));
    return absl::OkStatus();
  }

  if (absl::Status s = PrepareTaskDir(task->dir); !s.ok()) return s;
  std::string cgroup;
  if (isolation_.kind == IsolationKind::kCgroupV2) {
    absl::StatusOr<std::string> leaf = CreateTaskCgroup(
        isolation_, absl::StrCat("task-", EncodePathComponent(spec.id)),
        spec.vcpus, spec.memory_mb);
    if (!leaf.ok()) return leaf.status();
    cgroup = *leaf;
  }
  TaskRecord& record = task->record;
  record.boot_id = boot_id_;
  record.start_mono_us = MonotonicNowMicros();
  record.start_real_us = RealtimeNowMicros();
  record.timeout_us = spec.timeout_us;
  record.cgroup = cgroup;

  absl::StatusOr<pid_t> pid = Spawn(spec, task->dir, cgroup);
  absl::Status status = pid.status();
  if (status.ok()) {
    record.pid = *pid;
    task->pidfd = UniqueFd(PidfdOpen(*pid));
    if (!task->pidfd.valid()) {
      status = ErrnoStatus("pidfd_open", errno, absl::StrCat("pid ", *pid));
    }
  }
  if (status.ok()) {
    // The wrapper is our unreaped child, so its /proc entry is there.
    absl::StatusOr<ProcStat> stat = ReadProcStat(*pid);
    status = stat.status();
    if (status.ok()) record.proc_start_ticks = stat->start_ticks;
  }
  if (status.ok()) {
    status = WriteFileAtomically(absl::StrCat(task->dir, "/", kRecordFileName),
                                 SerializeTaskRecord(record));
  }
  if (status.ok()) status = Watch(task.get());
  if (!status.ok()) {
    if (pid.ok()) {
      // Nothing may run that Start did not report: kill the whole group
      // and reap the wrapper (it dies at once: a short wait).
      (void)kill(-*pid, SIGKILL);
      while (waitpid(*pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      (void)unlink(absl::StrCat(task->dir, "/", kRecordFileName).c_str());
    }
    if (!cgroup.empty()) DropCgroup(cgroup);
    return Annotate(status, absl::StrCat("starting task ", spec.id, ": "));
  }
  task->has_record = true;
  Task* t = tasks_.emplace(spec.id, std::move(task)).first->second.get();
  if (spec.timeout_us > 0) {
    t->timeout_timer = loop_->AddTimerAt(t->start_us + spec.timeout_us,
                                         [this, id = t->id] { OnTimeout(id); });
  }
  WorkEvent running;
  running.id = t->id;
  Queue(std::move(running));
  ArmMaintenance();
  return absl::OkStatus();
}

absl::Status ProcessExecutor::StartVm(const WorkSpec& spec) {
  if (!vms_->Has(spec.id) && tasks_.size() + vms_->size() >= kRunningMax) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "vm ", spec.id, ": ", kRunningMax, " tasks and VMs already run"));
  }
  RETURN_IF_ERROR(vms_->Start(spec));
  ArmMaintenance();  // output rotation
  return absl::OkStatus();
}

absl::Status ProcessExecutor::Watch(Task* task) {
  // The loop takes only non-blocking fds; on a pidfd the flag changes
  // nothing we use (waitid is called with WNOHANG anyway).
  RETURN_IF_ERROR(SetNonBlocking(task->pidfd.get()));
  return loop_->AddFd(task->pidfd.get(), EventLoop::kReadable,
                      [this, id = task->id](uint32_t) { OnProcessExit(id); });
}

void ProcessExecutor::Unwatch(Task* task) {
  if (task->pidfd.valid()) {
    CHECK_OK(loop_->RemoveFd(task->pidfd.get()));
    task->pidfd.Reset();
  }
  if (task->timeout_timer != 0) loop_->CancelTimer(task->timeout_timer);
  if (task->kill_timer != 0) loop_->CancelTimer(task->kill_timer);
  task->timeout_timer = 0;
  task->kill_timer = 0;
}

bool ProcessExecutor::Stop(WorkKind kind, absl::string_view id) {
  if (kind == WorkKind::kVm) return vms_->Stop(id);
  Task* task = Find(id);
  if (task == nullptr || task->phase != Task::Phase::kRunning) return false;
  BeginStopping(task, WorkEvent::Reason::kStopped);
  return true;
}

void ProcessExecutor::OnTimeout(const std::string& id) {
  Task* task = Find(id);
  CHECK(task != nullptr && task->phase == Task::Phase::kRunning) << id;
  task->timeout_timer = 0;
  BeginStopping(task, WorkEvent::Reason::kTimedOut);
}

void ProcessExecutor::BeginStopping(Task* task, WorkEvent::Reason reason) {
  CHECK(task->phase == Task::Phase::kRunning);
  task->phase = Task::Phase::kStopping;
  task->stop_reason = reason;
  if (task->timeout_timer != 0) loop_->CancelTimer(task->timeout_timer);
  task->timeout_timer = 0;
  SignalGroup(*task, SIGTERM);
  task->kill_timer =
      loop_->AddTimerAt(loop_->clock().NowMicros() + options_.kill_grace_us,
                        [this, id = task->id] { OnKillGraceOver(id); });
}

void ProcessExecutor::OnKillGraceOver(const std::string& id) {
  Task* task = Find(id);
  CHECK(task != nullptr && task->phase == Task::Phase::kStopping) << id;
  task->kill_timer = 0;
  logger_->Warning("task ", id, " outlived SIGTERM by ", options_.kill_grace_us,
                   " us: SIGKILL");
  SignalGroup(*task, SIGKILL);
}

void ProcessExecutor::SignalGroup(const Task& task, int signal) {
  // The wrapper leads the group until it is reaped, and it is reaped only
  // in OnProcessExit, after this was last called: -pid is still our group.
  if (kill(-task.record.pid, signal) != 0 && errno != ESRCH) {
    logger_->Warning(
        "task ", task.id, ": ",
        ErrnoStatus("kill", errno, absl::StrCat("-", task.record.pid))
            .ToString());
  }
  if (signal == SIGKILL && !task.record.cgroup.empty()) {
    if (absl::Status s = KillTaskCgroup(task.record.cgroup); !s.ok()) {
      logger_->Warning("task ", task.id, ": ", s.ToString());
    }
  }
}

void ProcessExecutor::OnProcessExit(const std::string& id) {
  Task* task = Find(id);
  CHECK(task != nullptr && task->phase != Task::Phase::kExited) << id;
  // The wrapper is gone. Whatever else of the task lives dies now, before
  // the wrapper is reaped (see SignalGroup).
  SignalGroup(*task, SIGKILL);
  siginfo_t info = {};
  bool status_known = false;
  if (waitid(static_cast<idtype_t>(P_PIDFD),
             static_cast<id_t>(task->pidfd.get()), &info,
             WEXITED | WNOHANG) == 0 &&
      info.si_pid != 0) {
    status_known = true;
  } else if (errno != ECHILD) {
    // ECHILD: adopted after a crash, so not our child (init reaps it).
    logger_->Warning("task ", id,
                     ": waitid: ", ErrnoStatus("waitid", errno).ToString());
  }
  const bool killed = status_known && info.si_code != CLD_EXITED;
  const int32_t wrapper_code = !status_known ? -1
                               : killed      ? 128 + info.si_status
                                             : info.si_status;

  std::optional<int32_t> recorded;
  absl::StatusOr<std::string> text =
      ReadSmallFile(absl::StrCat(task->dir, "/", kExitCodeFileName), 64);
  int32_t code = 0;
  if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &code)) {
    recorded = code;
  }

  TaskRecord& r = task->record;
  r.exited = true;
  r.exit_note.clear();
  if (task->phase == Task::Phase::kStopping) {
    r.exit_reason = task->stop_reason;
    r.exit_code = recorded.value_or(wrapper_code);
  } else if (recorded.has_value()) {
    r.exit_reason = WorkEvent::Reason::kFinished;
    r.exit_code = *recorded;
  } else {
    r.exit_reason = WorkEvent::Reason::kFailed;
    r.exit_code = wrapper_code;
    r.exit_note =
        !status_known ? "the task ended without recording an exit code"
        : killed
            ? absl::StrCat("the task's wrapper was killed by signal ",
                           info.si_status,
                           " before the program's exit was recorded")
            : absl::StrCat("the task's wrapper exited with ", info.si_status,
                           " without running the program (see output)");
  }
  r.duration_us = loop_->clock().NowMicros() - task->start_us;
  Unwatch(task);
  // So that a crash before delivery gives a new executor the same event.
  if (absl::Status s =
          WriteFileAtomically(absl::StrCat(task->dir, "/", kRecordFileName),
                              SerializeTaskRecord(r));
      !s.ok()) {
    logger_->Warning("task ", id, ": recording its exit: ", s.ToString());
  }
  if (!r.cgroup.empty()) DropCgroup(r.cgroup);
  QueueExited(task);
}

void ProcessExecutor::DropCgroup(const std::string& cgroup) {
  (void)KillTaskCgroup(cgroup);
  absl::Status s = RemoveTaskCgroup(cgroup);
  // Busy while the kill completes: Maintain() retries.
  if (!s.ok() && !absl::IsNotFound(s)) {
    cgroups_to_remove_[cgroup] = 0;
    ArmMaintenance();
  }
}

void ProcessExecutor::QueueExited(Task* task) {
  CHECK(task->record.exited);
  task->phase = Task::Phase::kExited;
  WorkEvent event;
  event.id = task->id;
  event.state = WorkEvent::State::kExited;
  event.reason = task->record.exit_reason;
  event.exit_code = task->record.exit_code;
  event.duration_us = task->record.duration_us;
  event.output_tail = ReadOutputTail(task->dir, kOutputTailBytesMax);
  if (!task->record.exit_note.empty()) {
    event.output_tail = AppendNote(std::move(event.output_tail),
                                   task->record.exit_note, kOutputTailBytesMax);
  }
  Queue(std::move(event));
}

}  // namespace blixard::net
