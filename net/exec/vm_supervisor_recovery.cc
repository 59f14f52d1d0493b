// VmSupervisor after a crash of the node process: what a new supervisor
// makes of the VM folders an earlier one left (vm_supervisor.h, "Restart
// safety"), and the folder removal shared with Forget.
#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "net/exec/vm_supervisor.h"

namespace blixard::net {
namespace {

// Sanity bounds on directory scans: VM folders are removed when their VM
// ends, so there are about as many as VMs; a folder holds a handful of
// files.
constexpr size_t kVmDirsScannedMax = 1 << 16;
constexpr size_t kVmDirFilesMax = 1024;

int PidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

std::vector<std::string> ListDir(const std::string& dir, size_t entries_max,
                                 int* error) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    *error = errno;
    return names;
  }
  *error = 0;
  while (struct dirent* entry = readdir(d)) {
    const absl::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
    if (names.size() >= entries_max) break;
  }
  closedir(d);
  std::sort(names.begin(), names.end());  // one order on every start
  return names;
}

}  // namespace

absl::Status RemoveFlatDir(const std::string& dir) {
  int error = 0;
  for (const std::string& name : ListDir(dir, kVmDirFilesMax, &error)) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("unlink", errno, path);
    }
  }
  if (error != 0) return ErrnoStatus("opendir", error, dir);
  if (rmdir(dir.c_str()) != 0) return ErrnoStatus("rmdir", errno, dir);
  return absl::OkStatus();
}

void VmSupervisor::Recover(size_t vms_max) {
  int error = 0;
  std::vector<std::string> names =
      ListDir(config_.vms_dir, kVmDirsScannedMax, &error);
  if (error != 0) {
    logger_->Error(ErrnoStatus("opendir", error, config_.vms_dir).ToString());
    return;
  }
  for (const std::string& name : names) {
    if (vms_.size() >= vms_max) {
      logger_->Error("more than ", vms_max, " VM folders: ignoring ", name,
                     " and after");
      return;
    }
    RecoverOne(name);
  }
}

void VmSupervisor::RecoverOne(const std::string& dir_name) {
  const std::string dir = absl::StrCat(config_.vms_dir, "/", dir_name);
  const std::string record_path = absl::StrCat(dir, "/", kRecordFileName);
  auto drop = [&](absl::string_view why) {
    logger_->Info("vm folder ", dir, ": ", why, ": removed");
    if (absl::Status s = RemoveFlatDir(dir); !s.ok()) {
      logger_->Warning(s.ToString());
    }
  };
  absl::StatusOr<std::string> text = ReadSmallFile(record_path, kRecordBytesMax);
  if (!text.ok()) {
    // No record: a run whose exit was delivered (a crash between removing
    // its record and its folder), or a Start that never got to write one.
    if (absl::IsNotFound(text.status())) {
      drop("no record");
    } else {
      logger_->Warning("vm folder ", dir, ": ", text.status().ToString());
    }
    return;
  }
  std::optional<std::string> name = DecodePathComponent(dir_name);
  absl::StatusOr<TaskRecord> record = ParseTaskRecord(*text);
  std::optional<VmDriverKind> driver;
  if (record.ok()) driver = ParseVmDriverName(record->vm_driver);
  if (!name.has_value() || name->empty() || !record.ok() ||
      !driver.has_value()) {
    // Whole within one boot (replaced by rename): a bad one is a torn
    // write from before a machine crash.
    drop(!name.has_value() || name->empty() ? "not a VM folder name"
         : !record.ok()                     ? record.status().ToString()
                                            : "record names no VM driver");
    return;
  }
  if (record->boot_id != config_.boot_id) {
    // env.h: work that died with the machine is simply gone.
    drop(absl::StrCat("vm ", *name, " died with the machine"));
    return;
  }
  auto vm = std::make_unique<Vm>();
  vm->name = *name;
  vm->dir = dir;
  vm->driver = *driver;
  vm->has_record = true;
  vm->record = std::move(*record);
  const int64_t age_us =
      std::max<int64_t>(0, MonotonicNowMicros() - vm->record.start_mono_us);
  vm->start_us = loop_->clock().NowMicros() - age_us;
  if (vm->record.exited) {
    Adopt(std::move(vm), UniqueFd(), /*ended=*/true);
    return;
  }
  // pidfd first, then the start time: a pid reused in between reads the
  // stranger's start time, and is not adopted.
  UniqueFd pidfd(PidfdOpen(vm->record.pid));
  absl::StatusOr<ProcStat> proc = absl::NotFoundError("no pidfd");
  if (pidfd.valid()) proc = ReadProcStat(vm->record.pid);
  if (proc.ok() && proc->start_ticks == vm->record.proc_start_ticks) {
    logger_->Info("adopting vm ", *name, " (", vm->record.vm_driver, ", pid ",
                  vm->record.pid, ")");
    Adopt(std::move(vm), std::move(pidfd), /*ended=*/proc->state == 'Z');
    return;
  }
  TaskRecord& r = vm->record;
  r.exited = true;
  r.exit_reason = WorkEvent::Reason::kFailed;
  r.exit_code = -1;
  r.duration_us = std::max<int64_t>(0, RealtimeNowMicros() - r.start_real_us);
  r.exit_note = "lost while the node was down: the VM's process is gone";
  logger_->Info("vm ", *name, " ended while the node was down");
  if (absl::Status s = WriteFileAtomically(record_path, SerializeTaskRecord(r));
      !s.ok()) {
    logger_->Warning("vm ", *name, ": recording its exit: ", s.ToString());
  }
  Adopt(std::move(vm), UniqueFd(), /*ended=*/true);
}

void VmSupervisor::Adopt(std::unique_ptr<Vm> owned, UniqueFd pidfd,
                         bool ended) {
  Vm* vm = vms_.emplace(owned->name, std::move(owned)).first->second.get();
  if (!pidfd.valid()) {
    QueueExited(vm);
    return;
  }
  vm->pidfd = std::move(pidfd);
  if (absl::Status s = Watch(vm); !s.ok()) {
    // Cannot watch it (fd limit): leave it to the next node process rather
    // than report an end we did not see.
    logger_->Error("vm ", vm->name, ": cannot watch: ", s.ToString());
    vm->pidfd.Reset();
    vms_.erase(vm->name);
    return;
  }
  // A zombie (our own unreaped child, when the supervisor was re-created
  // in one process) has already ended: its pidfd is readable, its exit is
  // seen next, and there is no kRunning to report.
  if (ended) return;
  if (vm->driver == VmDriverKind::kProcess) {
    QueueRunning(vm);
  } else {
    ArmBooting(vm);
  }
}

}  // namespace blixard::net
