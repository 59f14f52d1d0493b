// What a node can run VMs with, and how one VM is launched: the pieces of
// the VM drivers (vm_supervisor.h) that keep no state, so they can be
// tested without QEMU.
//
// Two drivers:
//   - qemu: qemu-system-x86_64 with a qcow2 overlay on the image (made by
//     qemu-img), KVM when /dev/kvm can be opened read-write (-accel kvm
//     -cpu host), TCG emulation otherwise (-accel tcg: slow, but it runs
//     anywhere, CI included);
//   - process: for machines without QEMU. A VM is a placeholder process
//     (sleep) in its own session, so scheduling, placement, Stop and
//     adoption work end to end. It isolates nothing and runs no image: the
//     image is only checked to exist, so bad input fails the same way as
//     under qemu.
// The setting "auto" picks qemu when qemu-system-x86_64 and qemu-img are
// found in the executor's task PATH, process otherwise.
//
// Thread: stateless. ProbeVmHost and ImageFormat touch the file system
// (a few stat/open calls, a 4-byte read): call them at start-up or accept
// a local disk read on the loop, as the task records do.
#ifndef BLIXARD_NET_EXEC_VM_DRIVER_H_
#define BLIXARD_NET_EXEC_VM_DRIVER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/env.h"

namespace blixard::net {

enum class VmDriverKind : uint8_t { kQemu = 0, kProcess = 1 };

// "qemu" / "process": the names in options and in VM records.
absl::string_view VmDriverName(VmDriverKind kind);
std::optional<VmDriverKind> ParseVmDriverName(absl::string_view name);

// Files in a VM folder (<data_dir>/vms/<encoded name>/), besides the
// record and output.log of task_record.h / task_output.h.
inline constexpr char kVmsDirName[] = "vms";
inline constexpr char kOverlayFileName[] = "overlay.qcow2";
inline constexpr char kQemuPidFileName[] = "qemu.pid";

// Bounds on a VM spec (INVALID_ARGUMENT beyond them). QEMU's pc machine
// takes at most 255 vCPUs; memory and disk bounds only keep arithmetic and
// command lines sane.
inline constexpr uint32_t kVmVcpusMax = 255;
inline constexpr uint64_t kVmMemoryMbMax = uint64_t{1} << 22;  // 4 TiB
inline constexpr uint64_t kVmDiskGbMax = uint64_t{1} << 16;    // 64 TiB

struct VmHost {
  VmDriverKind driver = VmDriverKind::kProcess;
  // qemu only: absolute paths, and whether KVM is usable.
  std::string qemu_binary;
  std::string qemu_img_binary;
  bool kvm = false;
  // One line for the node's start-up log, e.g. "qemu
  // (/usr/bin/qemu-system-x86_64, TCG: /dev/kvm: No such file or
  // directory)" or "process (no qemu-system-x86_64 in PATH ...)".
  std::string description;
};

// Decides the driver. `setting` is "qemu", "process" or "auto"; binaries
// without '/' are looked up in `path` (':'-separated absolute dirs).
// Errors: INVALID_ARGUMENT for another setting; NOT_FOUND, naming the
// binary and the PATH, when "qemu" is asked for and a binary is missing.
absl::StatusOr<VmHost> ProbeVmHost(absl::string_view setting,
                                   const std::string& path,
                                   const std::string& qemu_binary,
                                   const std::string& qemu_img_binary);

// The executable `name` resolves to ('/' in it: itself), or "" when none.
std::string FindExecutable(const std::string& name, const std::string& path);

// Empty when `image` names an existing regular file by absolute path,
// else the reason: "no such image '<image>' (...)".
std::string ImageProblem(const std::string& image);

// "qcow2" when the file starts with qcow2's magic ("QFI\xfb"), else "raw"
// (other formats are not told apart: use qcow2 or raw images). Errors:
// the ErrnoStatus of open/read naming the file.
absl::StatusOr<std::string> ImageFormat(const std::string& image);

// What Start spawns for one VM: argv (argv[0] = shell) of the VM wrapper,
// run with the VM folder as working directory and output.log as stdout
// and stderr. The wrapper sets RLIMIT_CORE to 0 (a dying QEMU must not
// dump a guest's memory to disk), creates the overlay (qemu only), then
// execs QEMU or the placeholder, so the spawned pid is QEMU's: the one
// process the pidfd watches and the record names. A failed step exits
// 125 with a "[blixard] ..." line in output.log.
struct VmLaunch {
  VmDriverKind driver = VmDriverKind::kProcess;
  std::string shell;         // absolute
  std::string encoded_name;  // EncodePathComponent(spec.id)
  std::string image;         // absolute, exists
  std::string image_format;  // qemu only: ImageFormat(image)
  uint32_t vcpus = 1;        // already defaulted and bounded
  uint64_t memory_mb = 512;
  uint64_t disk_gb = 0;  // 0: the overlay has the image's size
  bool kvm = false;
  std::string qemu_binary;
  std::string qemu_img_binary;
};
std::vector<std::string> VmWrapperArgv(const VmLaunch& launch);

}  // namespace blixard::net

#endif  // BLIXARD_NET_EXEC_VM_DRIVER_H_
