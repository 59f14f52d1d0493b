// Best-fit placement over the ONLINE workers, as a sorted index.
//
// The rule (ARCHITECTURE.md, "Replicated cluster state"): a worker is a
// candidate when it is ONLINE, its free capacity covers the demand in cpu,
// memory and disk, and it has every required feature. Among candidates the
// best fit has the lowest integer score
//
//   score = kScoreWeightCpu    * (free.cpu_cores - need.cpu_cores)
//         + kScoreWeightMemory * (free.memory_mb - need.memory_mb)
//         + kScoreWeightDisk   * (free.disk_gb   - need.disk_gb)
//
// (weighted leftover capacity: one core weighs as 4 GiB of memory and 64 GB
// of disk), and ties go to the lowest node id. `NaiveBestFit` states the
// rule as a filter-and-score loop; `PlacementIndex` must give the same answer
// on every input (placement_index_test checks it on random inputs).
//
// How the index is fast: the demand's weighted size is the same for every
// worker, so the score orders workers exactly as their weighted *free* size
// does. Workers are grouped by feature set, and each group keeps its workers
// ordered by (weighted free size, node id). A fitting worker's weighted free
// size is at least the demand's, so in each group whose features cover the
// required ones, the best candidate is the first fitting entry at or after
// lower_bound(weighted demand); the answer is the smallest of those over the
// groups. The scan inside a group skips only workers that are bigger overall
// but short in one dimension, and stops as soon as it cannot beat the best
// found so far.
//
// Integer only; iteration is over ordered containers only; no pointers are
// compared. Not thread-safe.
#ifndef BLIXARD_CORE_SM_PLACEMENT_INDEX_H_
#define BLIXARD_CORE_SM_PLACEMENT_INDEX_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace blixard::sm {

inline constexpr uint64_t kScoreWeightCpu = 4096;
inline constexpr uint64_t kScoreWeightMemory = 1;
inline constexpr uint64_t kScoreWeightDisk = 64;

// Resource amounts. Every amount stored by the state machine is bounded by
// the kWorker*Max limits (cluster_limits.h), so weighted sizes never overflow.
struct Amounts {
  uint64_t cpu_cores = 0;
  uint64_t memory_mb = 0;
  uint64_t disk_gb = 0;

  bool Covers(const Amounts& need) const {
    return cpu_cores >= need.cpu_cores && memory_mb >= need.memory_mb &&
           disk_gb >= need.disk_gb;
  }
  friend bool operator==(const Amounts& a, const Amounts& b) {
    return a.cpu_cores == b.cpu_cores && a.memory_mb == b.memory_mb &&
           a.disk_gb == b.disk_gb;
  }
};

// kScoreWeightCpu * cpu + kScoreWeightMemory * memory + kScoreWeightDisk * disk.
uint64_t WeightedSize(const Amounts& amounts);

// True when `have` (sorted, unique) contains every element of `need` (sorted).
bool HasFeatures(const std::vector<std::string>& have,
                 const std::vector<std::string>& need);

// One worker as the naive rule sees it.
struct NaiveCandidate {
  uint64_t node_id = 0;
  bool online = false;
  Amounts free;
  std::vector<std::string> features;  // sorted, unique
};

// The rule as a loop over every worker. Returns the chosen node id, or 0 when
// none fits. `exclude` (0: none) is never chosen.
uint64_t NaiveBestFit(const std::vector<NaiveCandidate>& workers,
                      const Amounts& need,
                      const std::vector<std::string>& required_features,
                      uint64_t exclude = 0);

class PlacementIndex {
 public:
  PlacementIndex() = default;
  PlacementIndex(const PlacementIndex&) = delete;
  PlacementIndex& operator=(const PlacementIndex&) = delete;
  PlacementIndex(PlacementIndex&&) = default;
  PlacementIndex& operator=(PlacementIndex&&) = default;

  // Adds an eligible worker.
  // REQUIRES: node_id != 0 and not present; `features` sorted and unique.
  void Add(uint64_t node_id, const Amounts& free,
           const std::vector<std::string>& features);
  // Updates the free capacity of a worker. REQUIRES: Contains(node_id).
  void UpdateFree(uint64_t node_id, const Amounts& free);

  // Removes a worker; no-op when absent.
  void Remove(uint64_t node_id);

  bool Contains(uint64_t node_id) const { return nodes_.contains(node_id); }
  // The free capacity recorded for a worker. REQUIRES: Contains(node_id).
  Amounts Free(uint64_t node_id) const;
  size_t size() const { return nodes_.size(); }
  bool empty() const { return nodes_.empty(); }

  // The best fit for `need` (see the file comment), or 0 when none fits.
  // REQUIRES: required_features sorted and unique.
  uint64_t BestFit(const Amounts& need,
                   const std::vector<std::string>& required_features,
                   uint64_t exclude = 0) const;

  // CHECKs that every worker sits in exactly one group under its current key.
  void CheckInvariants() const;

 private:
  struct Entry {
    uint64_t weighted_free;
    uint64_t node_id;
    Amounts free;
    friend bool operator<(const Entry& a, const Entry& b) {
      if (a.weighted_free != b.weighted_free) {
        return a.weighted_free < b.weighted_free;
      }
      return a.node_id < b.node_id;
    }
  };
  struct Group {
    std::vector<std::string> features;
    std::set<Entry> entries;
  };
  struct Slot {
    Group* group;
    Entry entry;
  };

  const std::vector<Group*>& GroupsCovering(
      const std::vector<std::string>& required_features) const;

  // Keyed by the feature set joined with '\0'; groups are never freed while
  // the index lives, so the Group* in slots and the cache stay valid.
  std::map<std::string, std::unique_ptr<Group>> groups_;
  absl::flat_hash_map<uint64_t, Slot> nodes_;  // lookups only, never iterated
  // Required-feature key -> groups covering it, in group-key order. Cleared
  // when a group is created.
  mutable std::map<std::string, std::vector<Group*>> covering_cache_;
};

// Joins sorted features into one key ("a\0b").
std::string FeatureKey(const std::vector<std::string>& features);

}  // namespace blixard::sm

#endif  // BLIXARD_CORE_SM_PLACEMENT_INDEX_H_
