// VmSupervisor: Start, Stop, exits, delivery hand-off and queries. QMP,
// booting and the stop escalation are in vm_supervisor_qmp.cc; recovery
// after a crash of the node process in vm_supervisor_recovery.cc.
#include "net/exec/vm_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"
#include "net/exec/spawn.h"
#include "net/exec/task_output.h"

namespace blixard::net {
namespace {

int PidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

// Releases posix_spawn's attribute and file-action objects on every path.

}  // namespace

VmSupervisor::VmSupervisor(EventLoop* loop, VmSupervisorConfig config,
                           QueueEvent queue)
    : loop_(loop),
      config_(std::move(config)),
      logger_(config_.logger),
      queue_(std::move(queue)) {
  CHECK(loop_ != nullptr && logger_ != nullptr && queue_);
  CHECK_GT(config_.boot_timeout_us, 0);
  CHECK_GT(config_.powerdown_grace_us, 0);
  CHECK_GT(config_.quit_grace_us, 0);
}

VmSupervisor::~VmSupervisor() {
  // A crash as far as VMs go: nothing is signalled; records stay.
  for (auto& [name, vm] : vms_) Unwatch(vm.get());
}

VmSupervisor::Vm* VmSupervisor::Find(absl::string_view name) const {
  auto it = vms_.find(name);
  return it == vms_.end() ? nullptr : it->second.get();
}

std::string VmSupervisor::VmDir(absl::string_view name) const {
  return absl::StrCat(config_.vms_dir, "/", EncodePathComponent(name));
}

absl::Status VmSupervisor::ValidateSpec(const WorkSpec& spec) const {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("vm ", spec.id, ": ", what));
  };
  if (spec.id.empty()) return absl::InvalidArgumentError("empty vm name");
  if (spec.command.empty()) return bad("empty image");
  if (spec.timeout_us < 0) return bad("negative timeout_us");
  if (EncodePathComponent(spec.id).size() > kEncodedIdBytesMax) {
    return bad(absl::StrCat("name too long (encoded over ", kEncodedIdBytesMax,
                            " bytes)"));
  }
  if (spec.id.find('\0') != std::string::npos ||
      spec.command.find('\0') != std::string::npos) {
    return bad("NUL byte in name or image");
  }
  if (spec.vcpus > kVmVcpusMax) {
    return bad(absl::StrCat(spec.vcpus, " vcpus, more than ", kVmVcpusMax));
  }
  if (spec.memory_mb > kVmMemoryMbMax) {
    return bad(absl::StrCat(spec.memory_mb, " MiB of memory, more than ",
                            kVmMemoryMbMax));
  }
  if (spec.disk_gb > kVmDiskGbMax) {
    return bad(absl::StrCat(spec.disk_gb, " GiB of disk, more than ",
                            kVmDiskGbMax));
  }
  return absl::OkStatus();
}

absl::StatusOr<pid_t> VmSupervisor::Spawn(const WorkSpec& spec,
                                          const std::string& dir) {
  VmLaunch launch;
  launch.driver = config_.host.driver;
  launch.shell = config_.shell;
  launch.encoded_name = EncodePathComponent(spec.id);
  launch.image = spec.command;
  launch.vcpus = spec.vcpus > 0 ? spec.vcpus : config_.default_vcpus;
  launch.memory_mb =
      spec.memory_mb > 0 ? spec.memory_mb : config_.default_memory_mb;
  launch.disk_gb = spec.disk_gb;
  launch.kvm = config_.host.kvm;
  launch.qemu_binary = config_.host.qemu_binary;
  launch.qemu_img_binary = config_.host.qemu_img_binary;
  if (launch.driver == VmDriverKind::kQemu) {
    ASSIGN_OR_RETURN(launch.image_format, ImageFormat(spec.command));
  }
  std::vector<std::string> argv = VmWrapperArgv(launch);
  std::vector<std::string> env = {absl::StrCat("PATH=", config_.path),
                                  absl::StrCat("HOME=", dir),
                                  absl::StrCat("BLIXARD_VM_NAME=", spec.id)};

  return SpawnSession(config_.shell, std::move(argv), std::move(env),
                      absl::StrCat(dir, "/", kOutputFileName), dir, absl::StrCat("vm ", spec.id));
}

absl::Status VmSupervisor::Start(const WorkSpec& spec) {
  CHECK(spec.kind == WorkKind::kVm);
  RETURN_IF_ERROR(ValidateSpec(spec));
  if (Find(spec.id) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat(
        "vm ", spec.id, " is running (or its exit is not delivered yet)"));
  }
  auto vm = std::make_unique<Vm>();
  vm->name = spec.id;
  vm->dir = VmDir(spec.id);
  vm->driver = config_.host.driver;
  vm->start_us = loop_->clock().NowMicros();

  const std::string problem = ImageProblem(spec.command);
  if (!problem.empty()) {
    // As a task's missing program: one kExited kFailed, later; no record,
    // no folder (nothing ran that a restarted node must know about).
    vm->phase = Vm::Phase::kExited;
    vm->record.exit_reason = WorkEvent::Reason::kFailed;
    vm->record.exit_code = -1;
    vm->record.exit_note = problem;
    Vm* v = vms_.emplace(spec.id, std::move(vm)).first->second.get();
    QueueExited(v);
    return absl::OkStatus();
  }

  // A fresh folder: a VM's disk lives one run (see "Disks").
  if (absl::Status s = RemoveFlatDir(vm->dir); !s.ok() && !absl::IsNotFound(s)) {
    return Annotate(s, absl::StrCat("starting vm ", spec.id, ": "));
  }
  if (mkdir(vm->dir.c_str(), 0750) != 0) {
    return ErrnoStatus("mkdir", errno, vm->dir);
  }
  TaskRecord& record = vm->record;
  record.boot_id = config_.boot_id;
  record.start_mono_us = MonotonicNowMicros();
  record.start_real_us = RealtimeNowMicros();
  record.vm_driver = std::string(VmDriverName(vm->driver));

  absl::StatusOr<pid_t> pid = Spawn(spec, vm->dir);
  absl::Status status = pid.status();
  if (status.ok()) {
    record.pid = *pid;
    vm->pidfd = UniqueFd(PidfdOpen(*pid));
    if (!vm->pidfd.valid()) {
      status = ErrnoStatus("pidfd_open", errno, absl::StrCat("pid ", *pid));
    }
  }
  if (status.ok()) {
    absl::StatusOr<ProcStat> stat = ReadProcStat(*pid);  // our child: there
    status = stat.status();
    if (status.ok()) record.proc_start_ticks = stat->start_ticks;
  }
  if (status.ok()) {
    status = WriteFileAtomically(absl::StrCat(vm->dir, "/", kRecordFileName),
                                 SerializeTaskRecord(record));
  }
  if (status.ok()) status = Watch(vm.get());
  if (!status.ok()) {
    if (pid.ok()) {
      // Nothing may run that Start did not report.
      (void)kill(-*pid, SIGKILL);
      while (waitpid(*pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    vm->pidfd.Reset();
    (void)RemoveFlatDir(vm->dir);
    return Annotate(status, absl::StrCat("starting vm ", spec.id, ": "));
  }
  vm->has_record = true;
  Vm* v = vms_.emplace(spec.id, std::move(vm)).first->second.get();
  logger_->Info("vm ", v->name, ": started (", VmDriverName(v->driver),
                ", pid ", v->record.pid, ")");
  if (v->driver == VmDriverKind::kProcess) {
    QueueRunning(v);
  } else {
    ArmBooting(v);
  }
  return absl::OkStatus();
}

absl::Status VmSupervisor::Watch(Vm* vm) {
  RETURN_IF_ERROR(SetNonBlocking(vm->pidfd.get()));
  return loop_->AddFd(vm->pidfd.get(), EventLoop::kReadable,
                      [this, name = vm->name](uint32_t) {
                        OnProcessExit(name);
                      });
}

void VmSupervisor::Unwatch(Vm* vm) {
  if (vm->pidfd.valid() && loop_->HasFd(vm->pidfd.get())) {
    CHECK_OK(loop_->RemoveFd(vm->pidfd.get()));
  }
  vm->pidfd.Reset();
  DropQmp(vm);
  if (vm->deadline_timer != 0) loop_->CancelTimer(vm->deadline_timer);
  if (vm->poll_timer != 0) loop_->CancelTimer(vm->poll_timer);
  vm->deadline_timer = 0;
  vm->poll_timer = 0;
}

bool VmSupervisor::Stop(absl::string_view name) {
  Vm* vm = Find(name);
  if (vm == nullptr || (vm->phase != Vm::Phase::kBooting &&
                        vm->phase != Vm::Phase::kRunning)) {
    return false;
  }
  vm->phase = Vm::Phase::kStopping;
  if (vm->deadline_timer != 0) loop_->CancelTimer(vm->deadline_timer);
  if (vm->poll_timer != 0) loop_->CancelTimer(vm->poll_timer);
  vm->deadline_timer = 0;
  vm->poll_timer = 0;
  vm->stop_step = 0;
  StopStep(vm->name);
  return true;
}

void VmSupervisor::OnProcessExit(const std::string& name) {
  Vm* vm = Find(name);
  CHECK(vm != nullptr && vm->phase != Vm::Phase::kExited) << name;
  // Whatever else is in the group (qemu-img, when the wrapper died before
  // the exec) goes before the leader is reaped, as for tasks.
  SignalGroup(*vm, SIGKILL);
  siginfo_t info = {};
  bool known = false;
  if (waitid(static_cast<idtype_t>(P_PIDFD),
             static_cast<id_t>(vm->pidfd.get()), &info, WEXITED | WNOHANG) ==
          0 &&
      info.si_pid != 0) {
    known = true;
  } else if (errno != ECHILD) {
    logger_->Warning("vm ", name, ": ", ErrnoStatus("waitid", errno).ToString());
  }
  const bool killed = known && info.si_code != CLD_EXITED;
  TaskRecord& r = vm->record;
  r.exited = true;
  r.exit_code = !known ? -1 : killed ? 128 + info.si_status : info.si_status;
  r.exit_note.clear();
  if (!vm->failure_note.empty()) {
    r.exit_reason = WorkEvent::Reason::kFailed;
    r.exit_note = vm->failure_note;
  } else if (vm->phase == Vm::Phase::kStopping) {
    r.exit_reason = WorkEvent::Reason::kStopped;
  } else {
    r.exit_reason = WorkEvent::Reason::kFailed;
    r.exit_note =
        !known ? "the VM's process ended without a Stop (status unknown)"
        : killed
            ? absl::StrCat("the VM's process was killed by signal ",
                           info.si_status, " without a Stop")
        : info.si_status == 125
            ? "the VM could not be set up (see the lines above)"
            : absl::StrCat("the VM's process exited with status ",
                           info.si_status, " without a Stop");
  }
  r.duration_us = loop_->clock().NowMicros() - vm->start_us;
  Unwatch(vm);
  logger_->Info("vm ", name, ": exited (",
                r.exit_note.empty() ? "stopped" : r.exit_note, ")");
  if (absl::Status s =
          WriteFileAtomically(absl::StrCat(vm->dir, "/", kRecordFileName),
                              SerializeTaskRecord(r));
      !s.ok()) {
    logger_->Warning("vm ", name, ": recording its exit: ", s.ToString());
  }
  QueueExited(vm);
}

void VmSupervisor::SignalGroup(const Vm& vm, int signal) {
  // QEMU leads its group until reaped (in OnProcessExit, after this).
  if (kill(-vm.record.pid, signal) != 0 && errno != ESRCH) {
    logger_->Warning("vm ", vm.name, ": ",
                     ErrnoStatus("kill", errno, absl::StrCat("-", vm.record.pid))
                         .ToString());
  }
}

void VmSupervisor::QueueRunning(Vm* vm) {
  vm->phase = Vm::Phase::kRunning;
  if (vm->deadline_timer != 0) loop_->CancelTimer(vm->deadline_timer);
  if (vm->poll_timer != 0) loop_->CancelTimer(vm->poll_timer);
  vm->deadline_timer = 0;
  vm->poll_timer = 0;
  WorkEvent event;
  event.kind = WorkKind::kVm;
  event.id = vm->name;
  event.duration_us = loop_->clock().NowMicros() - vm->start_us;
  queue_(std::move(event));
}

void VmSupervisor::QueueExited(Vm* vm) {
  vm->phase = Vm::Phase::kExited;
  WorkEvent event;
  event.kind = WorkKind::kVm;
  event.id = vm->name;
  event.state = WorkEvent::State::kExited;
  event.reason = vm->record.exit_reason;
  event.exit_code = vm->record.exit_code;
  event.duration_us = vm->record.duration_us;
  if (vm->has_record) {
    event.output_tail = ReadOutputTail(vm->dir, Executor::kOutputTailBytesMax);
  }
  if (!vm->record.exit_note.empty()) {
    event.output_tail =
        AppendNote(std::move(event.output_tail), vm->record.exit_note,
                   Executor::kOutputTailBytesMax);
  }
  queue_(std::move(event));
}

void VmSupervisor::Forget(absl::string_view name) {
  auto it = vms_.find(name);
  CHECK(it != vms_.end() && it->second->phase == Vm::Phase::kExited) << name;
  if (it->second->has_record) {
    // The record first: once it is gone the VM is over across restarts; a
    // crash before the rest is removed leaves a folder without a record,
    // which recovery removes.
    const std::string dir = it->second->dir;
    const std::string record = absl::StrCat(dir, "/", kRecordFileName);
    if (unlink(record.c_str()) != 0 && errno != ENOENT) {
      logger_->Warning(ErrnoStatus("unlink", errno, record).ToString());
    }
    if (absl::Status s = RemoveFlatDir(dir); !s.ok() && !absl::IsNotFound(s)) {
      logger_->Warning("vm ", name, ": removing its folder: ", s.ToString());
    }
  }
  vms_.erase(it);
}

std::vector<std::string> VmSupervisor::Running() const {
  std::vector<std::string> names;
  names.reserve(vms_.size());
  for (const auto& [name, vm] : vms_) names.push_back(name);  // sorted map
  return names;
}

bool VmSupervisor::Exited(absl::string_view name) const {
  const Vm* vm = Find(name);
  return vm != nullptr && vm->phase == Vm::Phase::kExited;
}

std::optional<pid_t> VmSupervisor::VmPid(absl::string_view name) const {
  const Vm* vm = Find(name);
  if (vm == nullptr || vm->phase == Vm::Phase::kExited) return std::nullopt;
  return vm->record.pid;
}

bool VmSupervisor::Maintain() {
  bool any_alive = false;
  for (const auto& [name, vm] : vms_) {
    if (vm->phase == Vm::Phase::kExited) continue;
    any_alive = true;
    absl::StatusOr<bool> rotated =
        RotateOutputIfOver(vm->dir, config_.output_file_bytes_max);
    if (!rotated.ok()) {
      logger_->Warning("vm ", name,
                       ": rotating output: ", rotated.status().ToString());
    }
  }
  return any_alive;
}

void VmSupervisor::CheckInvariants() const {
  for (const auto& [name, vm] : vms_) {
    CHECK_EQ(name, vm->name);
    const bool exited = vm->phase == Vm::Phase::kExited;
    CHECK_EQ(vm->pidfd.valid(), !exited) << name;
    if (!exited) CHECK(loop_->HasFd(vm->pidfd.get())) << name;
    CHECK(vm->has_record || exited) << name;
    CHECK_EQ(vm->record.exited, exited && vm->has_record) << name;
    CHECK(vm->qmp == nullptr || vm->driver == VmDriverKind::kQemu) << name;
    if (vm->qmp != nullptr) vm->qmp->CheckInvariants();
    CHECK(vm->poll_timer == 0 || vm->phase == Vm::Phase::kBooting) << name;
    CHECK(vm->deadline_timer == 0 || vm->phase == Vm::Phase::kBooting ||
          vm->phase == Vm::Phase::kStopping)
        << name;
    CHECK(vm->deadline_timer == 0 || loop_->IsTimerPending(vm->deadline_timer))
        << name;
    CHECK(vm->stop_step == 0 || vm->phase != Vm::Phase::kRunning) << name;
  }
}

}  // namespace blixard::net
