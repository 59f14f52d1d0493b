#include "net/exec/vm_driver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "net/exec/task_output.h"
#include "net/exec/qmp_client.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

// $1 qemu-img (empty: no overlay, the process driver), $2 the image's
// format, $3 the image, $4 the overlay's size ("" = the image's), then the
// program to exec with its arguments. Runs in the VM folder.
constexpr char kVmWrapperScript[] =
    "ulimit -c 0 || { echo '[blixard] could not set RLIMIT_CORE'; exit 125; }\n"
    "if [ -n \"$1\" ]; then\n"
    "  \"$1\" create -q -f qcow2 -F \"$2\" -b \"$3\" overlay.qcow2 ${4:+\"$4\"}"
    " || { echo \"[blixard] $1 could not create the overlay on $3\"; "
    "exit 125; }\n"
    "fi\n"
    "shift 4\n"
    "exec \"$@\"\n";
// The wrapper's $0 (what the shell's own error messages start with).
constexpr char kVmWrapperName[] = "blixard-vm";
// The process driver's placeholder: sleep for 68 years (portable where
// "infinity" is not), found through the VM's PATH.
constexpr char kPlaceholderSeconds[] = "2147483647";

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

}  // namespace

absl::string_view VmDriverName(VmDriverKind kind) {
  return kind == VmDriverKind::kQemu ? "qemu" : "process";
}

std::optional<VmDriverKind> ParseVmDriverName(absl::string_view name) {
  if (name == "qemu") return VmDriverKind::kQemu;
  if (name == "process") return VmDriverKind::kProcess;
  return std::nullopt;
}

std::string FindExecutable(const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) {
    return IsExecutableFile(name) ? name : "";
  }
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return "";
}

absl::StatusOr<VmHost> ProbeVmHost(absl::string_view setting,
                                   const std::string& path,
                                   const std::string& qemu_binary,
                                   const std::string& qemu_img_binary) {
  if (setting != "qemu" && setting != "process" && setting != "auto") {
    return absl::InvalidArgumentError(absl::StrCat(
        "vm_driver '", setting, "' is not one of qemu, process, auto"));
  }
  VmHost host;
  if (setting == "process") {
    host.description = "process (vm_driver=process): VMs are placeholder "
                       "processes, no isolation, no image run";
    return host;
  }
  host.qemu_binary = FindExecutable(qemu_binary, path);
  host.qemu_img_binary = FindExecutable(qemu_img_binary, path);
  std::string missing;
  if (host.qemu_binary.empty()) missing = qemu_binary;
  if (host.qemu_img_binary.empty()) {
    missing = missing.empty() ? qemu_img_binary
                              : absl::StrCat(missing, " and ", qemu_img_binary);
  }
  if (!missing.empty()) {
    if (setting == "qemu") {
      return absl::NotFoundError(absl::StrCat(
          "vm_driver=qemu: no ", missing, " in PATH ", path));
    }
    host.qemu_binary.clear();
    host.qemu_img_binary.clear();
    host.description =
        absl::StrCat("process (vm_driver=auto, no ", missing, " in PATH ",
                     path, "): VMs are placeholder processes, no isolation");
    return host;
  }
  host.driver = VmDriverKind::kQemu;
  // Usable = openable read-write, which is what QEMU does with it.
  UniqueFd kvm(open("/dev/kvm", O_RDWR | O_CLOEXEC));
  host.kvm = kvm.valid();
  host.description = absl::StrCat(
      "qemu (", host.qemu_binary, ", ",
      host.kvm ? "KVM" : absl::StrCat("TCG: /dev/kvm: ", strerror(errno)),
      ")");
  return host;
}

std::string ImageProblem(const std::string& image) {
  if (image.empty() || image[0] != '/') {
    return absl::StrCat("no such image '", image,
                        "' (an image is an absolute path to a file)");
  }
  struct stat st;
  if (stat(image.c_str(), &st) != 0) {
    return absl::StrCat("no such image '", image, "' (", strerror(errno), ")");
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::StrCat("no such image '", image, "' (not a regular file)");
  }
  if (access(image.c_str(), R_OK) != 0) {
    return absl::StrCat("no such image '", image, "' (", strerror(errno), ")");
  }
  return "";
}

absl::StatusOr<std::string> ImageFormat(const std::string& image) {
  UniqueFd fd(open(image.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open", errno, image);
  char magic[4] = {};
  ssize_t n;
  do {
    n = pread(fd.get(), magic, sizeof(magic), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus("pread", errno, image);
  if (n == 4 && memcmp(magic, "QFI\xfb", 4) == 0) return std::string("qcow2");
  return std::string("raw");
}

std::vector<std::string> VmWrapperArgv(const VmLaunch& l) {
  const bool qemu = l.driver == VmDriverKind::kQemu;
  std::vector<std::string> argv = {
      l.shell,
      "-c",
      kVmWrapperScript,
      kVmWrapperName,
      qemu ? l.qemu_img_binary : "",
      qemu ? l.image_format : "",
      l.image,
      qemu && l.disk_gb > 0 ? absl::StrCat(l.disk_gb, "G") : ""};
  if (!qemu) {
    argv.push_back("sleep");
    argv.push_back(kPlaceholderSeconds);
    return argv;
  }
  const std::vector<std::string> qemu_args = {
      l.qemu_binary,
      // Only what is asked for: no default NIC, VGA, floppy, CD-ROM, nor
      // the host's /etc/qemu config.
      "-nodefaults",
      "-no-user-config",
      // The encoded name: QEMU options treat ',' specially, and the
      // encoding has none.
      "-name",
      absl::StrCat("guest=", l.encoded_name),
      "-display",
      "none",
      "-accel",
      l.kvm ? "kvm" : "tcg",
      "-smp",
      absl::StrCat(l.vcpus),
      "-m",
      absl::StrCat(l.memory_mb),
      "-drive",
      absl::StrCat("file=", kOverlayFileName, ",format=qcow2,if=virtio"),
      // The serial console goes into output.log next to QEMU's own
      // messages (append, so the rotation of task_output.h bounds it too),
      // and its tail is the kExited event's output_tail.
      "-chardev",
      absl::StrCat("file,id=console,path=", kOutputFileName, ",append=on"),
      "-serial",
      "chardev:console",
      "-qmp",
      absl::StrCat("unix:", kQmpSocketName, ",server=on,wait=off"),
      "-pidfile",
      kQemuPidFileName,
  };
  argv.insert(argv.end(), qemu_args.begin(), qemu_args.end());
  if (l.kvm) {
    // The host's CPU model: guests see its features. TCG keeps QEMU's
    // default model, which emulates fastest.
    argv.push_back("-cpu");
    argv.push_back("host");
  }
  return argv;
}

}  // namespace blixard::net
