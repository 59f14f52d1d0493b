#include "net/exec/isolation.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/check.h"
#include "net/exec/task_record.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

constexpr char kRlimitsWhat[] = "rlimits (RLIMIT_CORE=0, RLIMIT_NOFILE)";
// Control files are tiny; anything larger is not a cgroup file.
constexpr size_t kControlFileBytesMax = 4096;

absl::Status WriteControlFile(const std::string& path,
                              absl::string_view value) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open", errno, path);
  // A control file takes one write; a short write is an error here.
  const ssize_t n = write(fd.get(), value.data(), value.size());
  if (n < 0) return ErrnoStatus("write", errno, path);
  if (static_cast<size_t>(n) != value.size()) {
    return absl::InternalError(absl::StrCat("short write to ", path));
  }
  return absl::OkStatus();
}

bool HasWord(const std::string& path, absl::string_view word) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, kControlFileBytesMax);
  if (!text.ok()) return false;
  for (absl::string_view w :
       absl::StrSplit(*text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    if (w == word) return true;
  }
  return false;
}

Isolation Fallback(absl::string_view why) {
  Isolation isolation;
  isolation.description = absl::StrCat(kRlimitsWhat, ": ", why);
  return isolation;
}

}  // namespace

absl::string_view IsolationKindName(IsolationKind kind) {
  return kind == IsolationKind::kCgroupV2 ? "cgroup-v2" : "rlimits";
}

Isolation ProbeIsolation(const std::string& cgroup_root) {
  if (cgroup_root.empty()) return Fallback("no cgroup_root given");
  if (cgroup_root[0] != '/') {
    return Fallback(
        absl::StrCat("cgroup_root ", cgroup_root, " is not an absolute path"));
  }
  struct statfs fs;
  if (statfs(cgroup_root.c_str(), &fs) != 0) {
    return Fallback(ErrnoStatus("statfs", errno, cgroup_root).ToString());
  }
  if (fs.f_type != CGROUP2_SUPER_MAGIC) {
    return Fallback(absl::StrCat("cgroup_root ", cgroup_root,
                                 " is not on a cgroup2 mount"));
  }
  const std::string probe =
      absl::StrCat(cgroup_root, "/blixard-probe-", getpid());
  if (mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
    return Fallback(absl::StrCat(
        "cannot make a leaf: ", ErrnoStatus("mkdir", errno, probe).ToString()));
  }
  const bool has_kill = access((probe + "/cgroup.kill").c_str(), W_OK) == 0;
  const bool has_procs = access((probe + "/cgroup.procs").c_str(), W_OK) == 0;
  if (rmdir(probe.c_str()) != 0) {
    return Fallback(ErrnoStatus("rmdir", errno, probe).ToString());
  }
  if (!has_kill) {
    return Fallback("leaves have no writable cgroup.kill (Linux < 5.14?)");
  }
  if (!has_procs) return Fallback("leaves have no writable cgroup.procs");

  Isolation isolation;
  isolation.kind = IsolationKind::kCgroupV2;
  isolation.cgroup_root = cgroup_root;
  const std::string available = cgroup_root + "/cgroup.controllers";
  const std::string subtree = cgroup_root + "/cgroup.subtree_control";
  for (absl::string_view controller : {"memory", "cpu"}) {
    if (HasWord(available, controller) && !HasWord(subtree, controller)) {
      // Fails when the root holds processes ("no internal processes"):
      // the limit is then not applied, and the description says so.
      (void)WriteControlFile(subtree, absl::StrCat("+", controller));
    }
  }
  isolation.memory_controller = HasWord(subtree, "memory");
  isolation.cpu_controller = HasWord(subtree, "cpu");
  isolation.description = absl::StrCat(
      "cgroup-v2 leaves under ", cgroup_root, " (cgroup.kill; memory.max ",
      isolation.memory_controller ? "on" : "off: controller not enabled",
      "; cpu.max ",
      isolation.cpu_controller ? "on" : "off: controller not enabled", ")");
  return isolation;
}

absl::StatusOr<std::string> CreateTaskCgroup(const Isolation& isolation,
                                             absl::string_view leaf_name,
                                             uint32_t vcpus,
                                             uint64_t memory_mb) {
  CHECK(isolation.kind == IsolationKind::kCgroupV2);
  CHECK(!leaf_name.empty() && leaf_name.find('/') == absl::string_view::npos)
      << leaf_name;
  const std::string leaf = absl::StrCat(isolation.cgroup_root, "/", leaf_name);
  if (mkdir(leaf.c_str(), 0755) != 0) {
    if (errno != EEXIST) return ErrnoStatus("mkdir", errno, leaf);
    // A leftover leaf: empty unless something of an old run survived,
    // which must not share a leaf (and its limits) with the new run.
    if (rmdir(leaf.c_str()) != 0) return ErrnoStatus("rmdir", errno, leaf);
    if (mkdir(leaf.c_str(), 0755) != 0)
      return ErrnoStatus("mkdir", errno, leaf);
  }
  absl::Status status;
  if (memory_mb > 0 && isolation.memory_controller) {
    status = WriteControlFile(leaf + "/memory.max",
                              absl::StrCat(memory_mb * 1024 * 1024));
  }
  if (status.ok() && vcpus > 0 && isolation.cpu_controller) {
    // Quota per period: vcpus full CPUs every 100 ms.
    constexpr uint64_t kPeriodUs = 100 * 1000;
    status = WriteControlFile(
        leaf + "/cpu.max",
        absl::StrCat(uint64_t{vcpus} * kPeriodUs, " ", kPeriodUs));
  }
  if (!status.ok()) {
    (void)rmdir(leaf.c_str());
    return status;
  }
  return leaf;
}

absl::Status KillTaskCgroup(const std::string& leaf) {
  return WriteControlFile(leaf + "/cgroup.kill", "1");
}

absl::Status RemoveTaskCgroup(const std::string& leaf) {
  if (rmdir(leaf.c_str()) != 0) return ErrnoStatus("rmdir", errno, leaf);
  return absl::OkStatus();
}

}  // namespace blixard::net
