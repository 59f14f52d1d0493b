// VmSupervisor: the VM half of ProcessExecutor (process_executor.h), which
// owns one and forwards every WorkKind::kVm call to it. A VM is one QEMU
// process (or, under the process driver, a placeholder process: see
// vm_driver.h) in a session of its own, watched through a pidfd on the
// node's EventLoop like a task, and driven through QMP (qmp_client.h).
//
// Folder per VM: <data_dir>/vms/<EncodePathComponent(name)>/ with
//   record         a TaskRecord (task_record.h) with vm_driver set;
//   overlay.qcow2  the VM's disk: a qcow2 overlay on the image
//                  (spec.command), virtual size disk_gb GiB (0: the image's);
//   output.log     the wrapper's, qemu-img's and QEMU's stdout and stderr,
//                  and the guest's serial console (rotated like a task's);
//   qmp.sock, qemu.pid  QEMU's.
//
// Life of a VM, as env.h says (kRunning once up, then exactly one kExited):
//   - Start checks the spec (INVALID_ARGUMENT: empty name or image, NUL
//     bytes, a name too long once encoded, vcpus/memory/disk beyond
//     vm_driver.h's bounds; 0 vcpus or memory take the options' defaults)
//     and the image. A missing image is not a Start error, as a missing
//     program is not one for a task (env.h gives Start no error for it):
//     Start returns ok and one kExited kFailed follows, its output_tail
//     ending "[blixard] no such image '<path>' (...)".
//     Then it empties the folder (a fresh disk for every run, see
//     "Disks"), spawns the wrapper (vm_driver.h: overlay, then exec QEMU)
//     in a new session and writes the record before returning ok.
//   - kRunning: qemu, when QMP's query-status says "running": true
//     (polled every kQmpPollIntervalUs; QMP reconnected as needed); process
//     driver, at once. A QEMU that is not running within boot_timeout_us
//     of Start is killed and ends kFailed ("did not report running").
//   - Stop (any time before the exit, booting included): qemu, QMP
//     system_powerdown (the guest's ACPI power button); after
//     powerdown_grace_us QMP quit, or SIGTERM when QMP is not connected;
//     after quit_grace_us SIGKILL to the process group. Process driver:
//     SIGTERM, then SIGKILL after quit_grace_us. kExited kStopped follows
//     when the process is gone, exit_code its status when known (-1 else).
//   - QEMU (or the placeholder) ends without a Stop: kExited kFailed,
//     "[blixard] the VM's process exited with status N without a Stop"
//     after QEMU's own last words in output_tail.
//
// Disks. env.h has no delete: the agent Stops a VM that is deleted, moved
// away, or desired stopped, and Starts it again (possibly elsewhere) when
// it should run. An overlay is local to one node, so a VM that moves
// starts from its image anyway; to keep disk use bounded without a delete
// call, a VM's disk lives exactly one run: the whole folder (overlay
// included) is removed when the VM's kExited is handed to the Host
// (Forget, called by the executor just before the callback), and every
// Start begins with a fresh overlay. Folders without a record (a crash
// between the two steps) are removed at recovery.
//
// Restart safety, as for tasks: the record names QEMU's pid, /proc start
// time and boot id. Destroying the supervisor is a crash: VMs keep running
// (their QMP connections close, which QEMU shrugs off). Recover() then
//   - drops records of another boot (the VM died with the machine), with
//     their folders, without an event;
//   - redelivers a recorded outcome;
//   - adopts a live QEMU: reconnects QMP and reports kRunning again once
//     query-status says running (boot_timeout_us counts from adoption);
//     the process driver's placeholder is reported running at once; Stop
//     works as above;
//   - reports one kExited kFailed ("lost while the node was down") for one
//     that is gone.
// Limit: an adopted QEMU is not our child, so its exit status is unknown
// (-1), and the final group SIGKILL has the same tiny pid-reuse window as
// an adopted task's (process_executor.h, "Killing").
//
// Events go out through the `queue` function given at construction (the
// executor's queue: delivered later from a loop timer, never inside
// Start/Stop). Thread: the loop thread only. REQUIRES: the loop outlives
// the supervisor.
#ifndef BLIXARD_NET_EXEC_VM_SUPERVISOR_H_
#define BLIXARD_NET_EXEC_VM_SUPERVISOR_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/base/logger.h"
#include "core/env.h"
#include "net/exec/qmp_client.h"
#include "net/exec/task_record.h"
#include "net/exec/vm_driver.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {

struct VmSupervisorConfig {
  std::string vms_dir;  // <data_dir>/vms, exists
  VmHost host;          // from ProbeVmHost
  std::string shell;    // the wrapper shell, absolute
  std::string path;     // PATH for the wrapper and QEMU
  std::string boot_id;
  int64_t boot_timeout_us = 0;      // > 0
  int64_t powerdown_grace_us = 0;   // > 0
  int64_t quit_grace_us = 0;        // > 0
  uint32_t default_vcpus = 1;       // for spec.vcpus == 0
  uint64_t default_memory_mb = 0;   // for spec.memory_mb == 0
  uint64_t output_file_bytes_max = 0;
  Logger* logger = nullptr;
};

class VmSupervisor {
 public:
  // How often QMP is retried (connect) and query-status repeated while a
  // VM boots.
  static constexpr int64_t kQmpPollIntervalUs = 50 * kMicrosPerMilli;

  using QueueEvent = std::function<void(WorkEvent event)>;

  VmSupervisor(EventLoop* loop, VmSupervisorConfig config, QueueEvent queue);
  // A crash for the VMs (see above): nothing is signalled, records stay.
  ~VmSupervisor();

  VmSupervisor(const VmSupervisor&) = delete;
  VmSupervisor& operator=(const VmSupervisor&) = delete;

  // Reads the records in vms_dir (see "Restart safety"). Call once, right
  // after construction. At most `vms_max` VMs are taken in.
  void Recover(size_t vms_max);

  // See above. ALREADY_EXISTS when the name is in Running(); capacity
  // (env.h's kRunningMax over tasks and VMs) is the executor's to check.
  // Operating errors (mkdir, open, posix_spawn, pidfd_open, the record
  // write) return their ErrnoStatus; nothing then runs and no event
  // follows.
  absl::Status Start(const WorkSpec& spec);

  // env.h's Stop for kVm.
  bool Stop(absl::string_view name);

  // Drops a VM whose kExited the executor is about to deliver, and
  // removes its folder (the record first, then the rest).
  // REQUIRES: Exited(name).
  void Forget(absl::string_view name);

  // Names whose kExited has not been delivered, sorted.
  std::vector<std::string> Running() const;
  size_t size() const { return vms_.size(); }
  bool Has(absl::string_view name) const { return Find(name) != nullptr; }
  // True when its kExited is queued.
  bool Exited(absl::string_view name) const;
  // QEMU's (or the placeholder's) pid while watched; for logs and tests.
  std::optional<pid_t> VmPid(absl::string_view name) const;
  // The VM's folder, for tests.
  std::string VmDir(absl::string_view name) const;

  // Rotates the output.log of live VMs past output_file_bytes_max;
  // returns whether any VM is alive (the executor keeps its periodic
  // check armed while one is).
  bool Maintain();

  const VmHost& host() const { return config_.host; }
  void CheckInvariants() const;

 private:
  struct Vm {
    enum class Phase : uint8_t {
      kBooting = 0,   // spawned (or adopted); kRunning not reported yet
      kRunning = 1,   // kRunning queued
      kStopping = 2,  // Stop called; escalating
      kExited = 3,    // kExited queued
    };
    std::string name;
    std::string dir;
    VmDriverKind driver = VmDriverKind::kProcess;
    Phase phase = Phase::kBooting;
    bool has_record = false;  // false: failed before anything ran
    TaskRecord record;
    MonoMicros start_us = 0;
    UniqueFd pidfd;  // valid unless kExited
    std::unique_ptr<QmpClient> qmp;
    // kBooting: the boot deadline; kStopping: the next escalation.
    EventLoop::TimerHandle deadline_timer = 0;
    // QMP reconnect / query-status poll.
    EventLoop::TimerHandle poll_timer = 0;
    int stop_step = 0;  // kStopping: 1 powerdown, 2 quit/SIGTERM, 3 SIGKILL
    std::string failure_note;  // why we killed it (boot timeout)
  };

  Vm* Find(absl::string_view name) const;
  absl::Status ValidateSpec(const WorkSpec& spec) const;
  absl::StatusOr<pid_t> Spawn(const WorkSpec& spec, const std::string& dir);
  absl::Status Watch(Vm* vm);
  void Unwatch(Vm* vm);
  void QueueRunning(Vm* vm);
  void QueueExited(Vm* vm);
  void RecoverOne(const std::string& dir_name);
  void Adopt(std::unique_ptr<Vm> vm, UniqueFd pidfd, bool ended);

  // QMP (vm_supervisor_qmp.cc).
  void ArmBooting(Vm* vm);
  void PollQmp(const std::string& name);
  bool EnsureQmp(Vm* vm);
  void OnQmpReply(const std::string& name, const QmpClient::Reply& reply);
  void OnQmpClosed(const std::string& name, const absl::Status& why);
  void DropQmp(Vm* vm);
  void OnBootDeadline(const std::string& name);
  void StopStep(const std::string& name);
  void SignalGroup(const Vm& vm, int signal);
  void OnProcessExit(const std::string& name);

  EventLoop* const loop_;
  const VmSupervisorConfig config_;
  Logger* const logger_;
  const QueueEvent queue_;
  absl::btree_map<std::string, std::unique_ptr<Vm>> vms_;
};

// Removes `dir` and the files in it (VM folders hold no subfolders).
// NOT_FOUND when it does not exist; ErrnoStatus otherwise.
absl::Status RemoveFlatDir(const std::string& dir);

}  // namespace blixard::net

#endif  // BLIXARD_NET_EXEC_VM_SUPERVISOR_H_
