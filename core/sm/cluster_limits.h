// Named limits of the cluster state machine: what one command may carry,
// and the resource maxima that keep integer placement scores from
// overflowing. Part of the state machine's contract with its clients.
#ifndef BLIXARD_CORE_SM_CLUSTER_LIMITS_H_
#define BLIXARD_CORE_SM_CLUSTER_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "core/sm/placement_index.h"

namespace blixard {

// Fixed limits on what one command may carry. Resource maxima keep every
// weighted score below 2^50, far from overflow.
inline constexpr uint64_t kWorkerCpuCoresMax = uint64_t{1} << 16;
inline constexpr uint64_t kWorkerMemoryMbMax = uint64_t{1} << 32;  // 4 PiB
inline constexpr uint64_t kWorkerDiskGbMax = uint64_t{1} << 24;    // 16 PiB
inline constexpr size_t kWorkerFeaturesMax = 32;
inline constexpr size_t kFeatureBytesMax = 64;
inline constexpr size_t kAddressBytesMax = 256;
inline constexpr size_t kTaskIdBytesMax = 128;
inline constexpr size_t kTaskCommandBytesMax = 4096;
inline constexpr size_t kTaskArgsMax = 256;
inline constexpr size_t kTaskArgBytesMax = 4096;
inline constexpr uint64_t kTaskTimeoutSecsMax = 7 * 24 * 3600;
inline constexpr uint32_t kTaskMaxAttemptsMax = 100;
inline constexpr uint32_t kTaskPriorityMax = 1000;
inline constexpr size_t kTaskOutputTailBytesMax = 4096;
inline constexpr size_t kTaskErrorBytesMax = 1024;
// Member records (MemberJoined): one per node id that ever joined with an
// empty store; ids are never reused, so this bounds the cluster's history.
inline constexpr size_t kMembersMax = 65'536;
inline constexpr size_t kVmNameBytesMax = 128;
inline constexpr size_t kVmImageBytesMax = 1024;
inline constexpr size_t kKvKeyBytesMax = 1024;
inline constexpr size_t kKvValueBytesMax = 64 * 1024;
inline constexpr size_t kListResultsMax = 10000;  // default cap of list queries
inline constexpr uint32_t kSnapshotFormatVersion = 1;
// The most bytes a committed entry's command may have (ApplyEntry rejects
// more without parsing). Above the largest valid command: a SubmitTask with
// every string at its limit is about 1.1 MiB (checked below); equal to the
// Host's bound on a host message, which carries forwarded commands.
inline constexpr size_t kCommandBytesMax = size_t{4} << 20;
// A generous bound on the encoding of a valid SubmitTask: each string plus
// 8 bytes of tag and length, and 256 bytes for the scalars and nesting.
static_assert(kTaskIdBytesMax + kTaskCommandBytesMax +
                  kTaskArgsMax * (kTaskArgBytesMax + 8) +
                  kWorkerFeaturesMax * (kFeatureBytesMax + 8) + 256 <
              kCommandBytesMax);
static_assert(kKvKeyBytesMax + kKvValueBytesMax + 256 < kCommandBytesMax);
// Log times beyond this (about 146 million years) are clamped, so deadlines
// (time + a grace or backoff of at most 2^40 ms) never overflow.
inline constexpr uint64_t kLogTimeMsMax = uint64_t{1} << 62;

static_assert(kWorkerCpuCoresMax * sm::kScoreWeightCpu +
                  kWorkerMemoryMbMax * sm::kScoreWeightMemory +
                  kWorkerDiskGbMax * sm::kScoreWeightDisk <
              (uint64_t{1} << 50));
// CPU-first best fit (placement_index.h): one core outweighs any memory and
// disk a worker may have.
static_assert(kWorkerMemoryMbMax * sm::kScoreWeightMemory +
                  kWorkerDiskGbMax * sm::kScoreWeightDisk <
              sm::kScoreWeightCpu);

}  // namespace blixard

#endif  // BLIXARD_CORE_SM_CLUSTER_LIMITS_H_
