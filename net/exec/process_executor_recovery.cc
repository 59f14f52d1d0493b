// ProcessExecutor's life: options, Create, what a new executor makes of the
// records an earlier node process left (the header's "Restart safety"), the
// destructor (a crash, for the tasks) and the invariants.
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"
#include "net/exec/process_executor.h"
#include "net/exec/task_output.h"

namespace blixard::net {
namespace {

// Sanity bound on the entries scanned in data_dir/tasks at start-up (task
// folders of finished runs stay, so there may be more than kRunningMax).
constexpr size_t kTaskDirsScannedMax = 1 << 20;

int PidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir", errno, path);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ProcessExecutorOptions::Validate() const {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("process executor options: ", what));
  };
  if (data_dir.empty()) return bad("data_dir is empty");
  if (kill_grace_us <= 0 || kill_grace_us > kKillGraceMaxUs) {
    return bad(absl::StrCat("kill_grace_us ", kill_grace_us, " is outside (0, ",
                            kKillGraceMaxUs, "]"));
  }
  if (output_file_bytes_max < Executor::kOutputTailBytesMax ||
      output_file_bytes_max > (uint64_t{1} << 30)) {
    return bad(absl::StrCat("output_file_bytes_max ", output_file_bytes_max,
                            " is outside [", Executor::kOutputTailBytesMax,
                            ", 1 GiB]"));
  }
  if (output_check_interval_us < kMicrosPerMilli ||
      output_check_interval_us > 3600 * kMicrosPerSecond) {
    return bad(absl::StrCat("output_check_interval_us ",
                            output_check_interval_us,
                            " is outside [1 ms, 1 hour]"));
  }
  if (task_path.empty()) return bad("task_path is empty");
  for (absl::string_view dir : absl::StrSplit(task_path, ':')) {
    if (dir.empty() || dir[0] != '/') {
      return bad(absl::StrCat("task_path ", task_path,
                              " holds a directory that is not absolute"));
    }
  }
  if (shell.empty() || shell[0] != '/') {
    return bad(absl::StrCat("shell '", shell, "' is not an absolute path"));
  }
  if (task_open_files_max < 16 || task_open_files_max > (uint64_t{1} << 20)) {
    return bad(absl::StrCat("task_open_files_max ", task_open_files_max,
                            " is outside [16, 1048576]"));
  }
  if (logger == nullptr) return bad("logger is null");
  if (vm_driver != "qemu" && vm_driver != "process" && vm_driver != "auto") {
    return bad(absl::StrCat("vm_driver '", vm_driver,
                            "' is not one of qemu, process, auto"));
  }
  if (qemu_binary.empty() || qemu_img_binary.empty()) {
    return bad("qemu_binary or qemu_img_binary is empty");
  }
  for (const auto& [name, value] :
       {std::pair<const char*, int64_t>{"vm_boot_timeout_us",
                                        vm_boot_timeout_us},
        {"vm_powerdown_grace_us", vm_powerdown_grace_us},
        {"vm_quit_grace_us", vm_quit_grace_us}}) {
    if (value <= 0 || value > kVmGraceMaxUs) {
      return bad(absl::StrCat(name, " ", value, " is outside (0, ",
                              kVmGraceMaxUs, "]"));
    }
  }
  if (vm_default_vcpus < 1 || vm_default_vcpus > kVmVcpusMax) {
    return bad(absl::StrCat("vm_default_vcpus ", vm_default_vcpus,
                            " is outside [1, ", kVmVcpusMax, "]"));
  }
  if (vm_default_memory_mb < 16 || vm_default_memory_mb > kVmMemoryMbMax) {
    return bad(absl::StrCat("vm_default_memory_mb ", vm_default_memory_mb,
                            " is outside [16, ", kVmMemoryMbMax, "]"));
  }
  return absl::OkStatus();
}

ProcessExecutor::ProcessExecutor(EventLoop* loop,
                                 ProcessExecutorOptions options)
    : loop_(loop), options_(std::move(options)), logger_(options_.logger) {}

absl::StatusOr<std::unique_ptr<ProcessExecutor>> ProcessExecutor::Create(
    EventLoop* loop, ProcessExecutorOptions options) {
  CHECK(loop != nullptr);
  RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<ProcessExecutor> executor(
      new ProcessExecutor(loop, std::move(options)));
  RETURN_IF_ERROR(executor->Init());
  executor->Recover();
  executor->vms_->Recover(ProcessExecutor::kRunningMax -
                          executor->tasks_.size());
  if (executor->vms_->size() > 0) executor->ArmMaintenance();
  executor->CheckInvariants();
  return executor;
}

absl::Status ProcessExecutor::Init() {
  {
    UniqueFd self(PidfdOpen(getpid()));
    if (!self.valid()) {
      return Annotate(ErrnoStatus("pidfd_open", errno),
                      "the process executor needs pidfds (Linux >= 5.3): ");
    }
  }
  if (access(options_.shell.c_str(), X_OK) != 0) {
    return ErrnoStatus("access(X_OK)", errno, options_.shell);
  }
  RETURN_IF_ERROR(MakeDir(options_.data_dir));
  tasks_dir_ = absl::StrCat(options_.data_dir, "/", kTasksDirName);
  RETURN_IF_ERROR(MakeDir(tasks_dir_));
  ASSIGN_OR_RETURN(boot_id_, ReadBootId());
  struct rlimit files;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  task_open_files_max_ =
      files.rlim_max == RLIM_INFINITY
          ? options_.task_open_files_max
          : std::min<uint64_t>(options_.task_open_files_max, files.rlim_max);
  isolation_ = ProbeIsolation(options_.cgroup_root);

  ASSIGN_OR_RETURN(VmHost host,
                   ProbeVmHost(options_.vm_driver, options_.task_path,
                               options_.qemu_binary, options_.qemu_img_binary));
  VmSupervisorConfig vm_config;
  vm_config.vms_dir = absl::StrCat(options_.data_dir, "/", kVmsDirName);
  RETURN_IF_ERROR(MakeDir(vm_config.vms_dir));
  vm_config.host = std::move(host);
  vm_config.shell = options_.shell;
  vm_config.path = options_.task_path;
  vm_config.boot_id = boot_id_;
  vm_config.boot_timeout_us = options_.vm_boot_timeout_us;
  vm_config.powerdown_grace_us = options_.vm_powerdown_grace_us;
  vm_config.quit_grace_us = options_.vm_quit_grace_us;
  vm_config.default_vcpus = options_.vm_default_vcpus;
  vm_config.default_memory_mb = options_.vm_default_memory_mb;
  vm_config.output_file_bytes_max = options_.output_file_bytes_max;
  vm_config.logger = logger_;
  vms_ = std::make_unique<VmSupervisor>(
      loop_, std::move(vm_config),
      [this](WorkEvent event) { Queue(std::move(event)); });
  return absl::OkStatus();
}

ProcessExecutor::~ProcessExecutor() {
  // A crash as far as tasks and VMs go: nothing is signalled; records
  // stay.
  for (auto& [id, task] : tasks_) Unwatch(task.get());
  vms_.reset();
  if (flush_timer_ != 0) loop_->CancelTimer(flush_timer_);
  if (maintenance_timer_ != 0) loop_->CancelTimer(maintenance_timer_);
}

void ProcessExecutor::Recover() {
  DIR* dir = opendir(tasks_dir_.c_str());
  if (dir == nullptr) {
    // Init just made it: only a concurrent rmdir gets here.
    logger_->Error(ErrnoStatus("opendir", errno, tasks_dir_).ToString());
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* entry = readdir(dir)) {
    const absl::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
    if (names.size() >= kTaskDirsScannedMax) break;
  }
  closedir(dir);
  std::sort(names.begin(), names.end());  // one order on every start
  for (const std::string& name : names) RecoverOne(name);
}

void ProcessExecutor::RecoverOne(const std::string& dir_name) {
  const std::string dir = absl::StrCat(tasks_dir_, "/", dir_name);
  const std::string record_path = absl::StrCat(dir, "/", kRecordFileName);
  absl::StatusOr<std::string> text =
      ReadSmallFile(record_path, kRecordBytesMax);
  if (!text.ok()) {
    // No record: the folder of a run whose exit was delivered.
    if (!absl::IsNotFound(text.status())) {
      logger_->Warning("task folder ", dir, ": ", text.status().ToString());
    }
    return;
  }
  std::optional<std::string> id = DecodePathComponent(dir_name);
  absl::StatusOr<TaskRecord> record = ParseTaskRecord(*text);
  if (!id.has_value() || id->empty() || !record.ok()) {
    // Within one boot records are replaced by rename, so they are whole:
    // a bad one is a torn write from before a machine crash.
    logger_->Warning(
        "dropping task record ", record_path, ": ",
        id.has_value() ? record.status().ToString() : "not a task folder name");
    (void)unlink(record_path.c_str());
    return;
  }
  if (tasks_.size() >= kRunningMax) {
    logger_->Error("more than ", kRunningMax, " task records: ignoring ",
                   record_path);
    return;
  }
  if (record->boot_id != boot_id_) {
    // env.h: work that died with the machine is simply gone.
    logger_->Info("task ", *id, " died with the machine (boot ",
                  record->boot_id, ")");
    (void)unlink(record_path.c_str());
    return;
  }
  auto task = std::make_unique<Task>();
  task->id = *id;
  task->dir = dir;
  task->has_record = true;
  task->record = std::move(*record);
  // The record's start, on our clock: how long ago it was on
  // CLOCK_MONOTONIC, back from now.
  const int64_t age_us =
      std::max<int64_t>(0, MonotonicNowMicros() - task->record.start_mono_us);
  task->start_us = loop_->clock().NowMicros() - age_us;

  if (task->record.exited) {
    Adopt(std::move(task), UniqueFd(), /*exited=*/true);
    return;
  }
  // pidfd first, then the start time: if the pid was reused between the
  // two, the start time read is the stranger's, and we do not adopt.
  UniqueFd pidfd(PidfdOpen(task->record.pid));
  absl::StatusOr<ProcStat> proc = absl::NotFoundError("no pidfd");
  if (pidfd.valid()) proc = ReadProcStat(task->record.pid);
  if (proc.ok() && proc->start_ticks == task->record.proc_start_ticks) {
    logger_->Info("adopting task ", *id, " (pid ", task->record.pid, ")");
    // A zombie (our own unreaped child, when the executor was re-created
    // in one process) has already ended: its exit is seen at once, and
    // there is no kRunning to report.
    const bool ended = proc->state == 'Z';
    Adopt(std::move(task), std::move(pidfd), ended);
    return;
  }

  // Gone while no executor watched.
  TaskRecord& r = task->record;
  const std::string exit_code_path = absl::StrCat(dir, "/", kExitCodeFileName);
  absl::StatusOr<std::string> code_text = ReadSmallFile(exit_code_path, 64);
  int32_t code = 0;
  struct stat st;
  r.exited = true;
  if (code_text.ok() &&
      absl::SimpleAtoi(absl::StripAsciiWhitespace(*code_text), &code) &&
      stat(exit_code_path.c_str(), &st) == 0) {
    r.exit_reason = WorkEvent::Reason::kFinished;
    r.exit_code = code;
    const int64_t ended_real_us =
        static_cast<int64_t>(st.st_mtim.tv_sec) * kMicrosPerSecond +
        st.st_mtim.tv_nsec / 1000;
    r.duration_us = std::max<int64_t>(0, ended_real_us - r.start_real_us);
  } else {
    r.exit_reason = WorkEvent::Reason::kFailed;
    r.exit_code = -1;
    r.duration_us = std::max<int64_t>(0, RealtimeNowMicros() - r.start_real_us);
    r.exit_note =
        "lost while the node was down: its process is gone and recorded no "
        "exit code";
  }
  logger_->Info("task ", *id, " ended while the node was down");
  if (!r.cgroup.empty()) DropCgroup(r.cgroup);
  if (absl::Status s = WriteFileAtomically(record_path, SerializeTaskRecord(r));
      !s.ok()) {
    logger_->Warning("task ", *id, ": recording its exit: ", s.ToString());
  }
  Adopt(std::move(task), UniqueFd(), /*exited=*/true);
}

void ProcessExecutor::Adopt(std::unique_ptr<Task> owned, UniqueFd pidfd,
                            bool exited) {
  Task* task = tasks_.emplace(owned->id, std::move(owned)).first->second.get();
  if (!pidfd.valid()) {
    QueueExited(task);
    return;
  }
  task->pidfd = std::move(pidfd);
  if (absl::Status s = Watch(task); !s.ok()) {
    // Cannot watch it (fd limit): leave it to the next node process rather
    // than report an end we did not see.
    logger_->Error("task ", task->id, ": cannot watch: ", s.ToString());
    task->pidfd.Reset();
    tasks_.erase(task->id);
    return;
  }
  if (exited) return;  // the pidfd is readable: OnProcessExit comes next
  if (task->record.timeout_us > 0) {
    // Its timeout counts from the original Start (env.h), maybe already
    // passed: the timer then fires at once.
    task->timeout_timer =
        loop_->AddTimerAt(task->start_us + task->record.timeout_us,
                          [this, id = task->id] { OnTimeout(id); });
  }
  WorkEvent running;
  running.id = task->id;
  Queue(std::move(running));
  ArmMaintenance();
}

void ProcessExecutor::CheckInvariants() const {
  CHECK_LE(tasks_.size() + vms_->size(), kRunningMax);
  CHECK_LE(pending_.size(), 2 * (tasks_.size() + vms_->size()));
  CHECK(flush_timer_ == 0 || loop_->IsTimerPending(flush_timer_));
  vms_->CheckInvariants();
  size_t exits_pending = 0;
  size_t vm_exits_pending = 0;
  for (const WorkEvent& e : pending_) {
    if (e.kind == WorkKind::kVm) {
      CHECK(vms_->Has(e.id)) << "event for unknown vm " << e.id;
      if (e.state == WorkEvent::State::kExited) {
        ++vm_exits_pending;
        CHECK(vms_->Exited(e.id)) << e.id;
      }
      continue;
    }
    const Task* task = Find(e.id);
    CHECK(task != nullptr) << "event for unknown task " << e.id;
    if (e.state == WorkEvent::State::kExited) {
      ++exits_pending;
      CHECK(task->phase == Task::Phase::kExited) << e.id;
    }
  }
  size_t exited = 0;
  for (const auto& [id, task] : tasks_) {
    CHECK_EQ(id, task->id);
    const bool is_exited = task->phase == Task::Phase::kExited;
    exited += is_exited ? 1 : 0;
    CHECK_EQ(task->pidfd.valid(), !is_exited) << id;
    if (!is_exited) CHECK(loop_->HasFd(task->pidfd.get())) << id;
    CHECK(task->kill_timer == 0 || task->phase == Task::Phase::kStopping) << id;
    CHECK(task->timeout_timer == 0 || task->phase == Task::Phase::kRunning)
        << id;
    CHECK(task->has_record || is_exited) << id;
    CHECK_EQ(task->record.exited, is_exited && task->has_record) << id;
  }
  // Every exited task's kExited is queued exactly once until delivered.
  CHECK_EQ(exits_pending, exited);
  size_t vms_exited = 0;
  for (const std::string& name : vms_->Running()) {
    vms_exited += vms_->Exited(name) ? 1 : 0;
  }
  CHECK_EQ(vm_exits_pending, vms_exited);
}

}  // namespace blixard::net
