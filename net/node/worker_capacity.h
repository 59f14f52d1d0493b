// What this machine offers as a worker (issue 15, item 1): CPU cores from
// the process's affinity mask (what a container or `taskset` gives it, not
// the machine's count), memory from /proc/meminfo's MemTotal, disk from
// the space available to the data dir's file system, each minus a reserve
// kept for the node itself and the rest of the machine.
#ifndef BLIXARD_NET_NODE_WORKER_CAPACITY_H_
#define BLIXARD_NET_NODE_WORKER_CAPACITY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/proto/cluster.pb.h"

namespace blixard::net {

// Kept back from what is detected (saturating at 0).
struct WorkerReserve {
  uint64_t cpu_cores = 0;
  uint64_t memory_mb = 512;
  uint64_t disk_gb = 1;
};

// The machine as detected, before reserves. Errors: the failing call
// (sched_getaffinity, reading /proc/meminfo, statvfs) naming what it read.
absl::StatusOr<cluster::Resources> DetectResources(const std::string& data_dir);

// `detected` minus `reserve`, each at least 0.
cluster::Resources LessReserve(const cluster::Resources& detected, const WorkerReserve& reserve);

// MemTotal of a /proc/meminfo text, in MiB. INVALID_ARGUMENT when it has
// no parsable MemTotal line.
absl::StatusOr<uint64_t> MemTotalMb(absl::string_view meminfo);

}  // namespace blixard::net

#endif  // BLIXARD_NET_NODE_WORKER_CAPACITY_H_
