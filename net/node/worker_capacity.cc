#include "net/node/worker_capacity.h"

#include <sched.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace blixard::net {

absl::StatusOr<uint64_t> MemTotalMb(absl::string_view meminfo) {
  for (absl::string_view line : absl::StrSplit(meminfo, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemTotal:")) continue;
    line = absl::StripAsciiWhitespace(line);
    uint64_t kib = 0;
    if (absl::ConsumeSuffix(&line, "kB") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib)) {
      return kib / 1024;
    }
    break;
  }
  return absl::InvalidArgumentError("/proc/meminfo has no 'MemTotal: N kB' line");
}

absl::StatusOr<cluster::Resources> DetectResources(const std::string& data_dir) {
  cluster::Resources r;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    return absl::InternalError(absl::StrCat("sched_getaffinity: ", std::strerror(errno)));
  }
  r.set_cpu_cores(static_cast<uint64_t>(CPU_COUNT(&set)));

  std::ifstream in("/proc/meminfo");
  if (!in) return absl::InternalError("cannot read /proc/meminfo");
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<uint64_t> memory = MemTotalMb(text.str());
  if (!memory.ok()) return memory.status();
  r.set_memory_mb(*memory);

  struct statvfs fs;
  if (statvfs(data_dir.c_str(), &fs) != 0) {
    return absl::InternalError(
        absl::StrCat("statvfs '", data_dir, "': ", std::strerror(errno)));
  }
  const uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  r.set_disk_gb(available >> 30);
  return r;
}

cluster::Resources LessReserve(const cluster::Resources& detected, const WorkerReserve& reserve) {
  auto less = [](uint64_t have, uint64_t keep) { return have > keep ? have - keep : 0; };
  cluster::Resources r;
  r.set_cpu_cores(less(detected.cpu_cores(), reserve.cpu_cores));
  r.set_memory_mb(less(detected.memory_mb(), reserve.memory_mb));
  r.set_disk_gb(less(detected.disk_gb(), reserve.disk_gb));
  return r;
}

}  // namespace blixard::net
