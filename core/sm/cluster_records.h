// Record helpers shared by the cluster state machine's files: resource
// amounts of records, and the validation of everything a command or a
// snapshot may carry (limits, UTF-8, normalized feature lists). Pure
// functions; the validators return "" when valid, else a message naming the
// bad field.
#ifndef BLIXARD_CORE_SM_CLUSTER_RECORDS_H_
#define BLIXARD_CORE_SM_CLUSTER_RECORDS_H_

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/placement_index.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_field.h"

namespace blixard::sm {

// True when sorted `have` contains every element of sorted `need`.
template <typename RangeA, typename RangeB>
bool Includes(const RangeA& have, const RangeB& need) {
  return std::includes(have.begin(), have.end(), need.begin(), need.end());
}

// True when `features` is sorted and has no duplicates: what
// ValidateFeatures would leave it as.
inline bool SortedUnique(
    const google::protobuf::RepeatedPtrField<std::string>& features) {
  return std::adjacent_find(features.begin(), features.end(),
                            [](const std::string& a, const std::string& b) {
                              return !(a < b);
                            }) == features.end();
}

inline std::vector<std::string> ToVector(
    const google::protobuf::RepeatedPtrField<std::string>& features) {
  return std::vector<std::string>(features.begin(), features.end());
}

Amounts ToAmounts(const cluster::Resources& r);
Amounts TaskNeed(const cluster::TaskRecord& task);
Amounts VmNeed(const cluster::VmRecord& vm);
// capacity - reserved. CHECKs that the worker is not over-committed.
Amounts FreeOf(const cluster::WorkerRecord& worker);
void SetResources(cluster::Resources& r, const Amounts& a);
// ASSIGNED or RUNNING: the task holds a reservation on worker_id.
bool IsPlacedState(cluster::TaskState state);
bool ValidWorkerStatus(int status);

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, at
// most U+10FFFF).
bool IsValidUtf8(absl::string_view text);
std::string ValidateText(absl::string_view text, absl::string_view what);
// Validates a feature list; on success writes it sorted and unique.
std::string ValidateFeatures(
    const google::protobuf::RepeatedPtrField<std::string>& features,
    absl::string_view what, std::vector<std::string>& normalized);
// Each amount within the kWorker*Max limits, and not all zero.
std::string ValidateAmounts(const Amounts& a, absl::string_view what);
// 1..max_bytes bytes of UTF-8.
std::string ValidateId(absl::string_view id, absl::string_view what,
                       size_t max_bytes);
// On success writes the normalized spec (sorted, unique features) to `out`.
std::string ValidateTaskSpec(const cluster::TaskSpec& spec,
                             cluster::TaskSpec& out);
std::string ValidateVmSpec(const cluster::VmSpec& spec, cluster::VmSpec& out);
std::string ValidateKey(absl::string_view key);
// Keeps at most `max_bytes` of `text`, cut on a UTF-8 character boundary.
void TruncateUtf8Prefix(std::string& text, size_t max_bytes);
bool SameMessage(const google::protobuf::Message& a,
                 const google::protobuf::Message& b);

}  // namespace blixard::sm

#endif  // BLIXARD_CORE_SM_CLUSTER_RECORDS_H_
