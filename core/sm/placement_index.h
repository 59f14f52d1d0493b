// Best-fit placement over the ONLINE workers, as a sorted index.
//
// The rule (ARCHITECTURE.md, "Replicated cluster state"): a worker is a
// candidate when it is ONLINE, its free capacity covers the demand in cpu,
// memory and disk, and it has every required feature. Among candidates the
// best fit has the lowest integer score over the leftover capacity
//
//   score = kScoreWeightCpu    * (free.cpu_cores - need.cpu_cores)
//         + kScoreWeightMemory * (free.memory_mb - need.memory_mb)
//         + kScoreWeightDisk   * (free.disk_gb   - need.disk_gb)
//
// and ties go to the lowest node id. The cpu weight (2^33) exceeds the
// largest possible memory and disk term, so the rule is CPU-first best fit
// (pack the worker with the fewest cores left), then the least memory and
// disk left, one GB of disk weighing as 64 MB of memory. CPU leads because it
// is the resource tasks exhaust first, and because it keeps the index below
// fast: workers short of cores sort before the demand and are never visited.
// `NaiveBestFit` states the rule as a filter-and-score loop;
// `PlacementIndex` must give the same answer on every input
// (placement_index_test checks it on random inputs).
//
// How the index is fast: the demand's weighted size is the same for every
// worker, so the score orders workers exactly as their weighted *free* size
// does. The index keeps the ONLINE workers in one treap ordered by (weighted
// free size, node id). Every node also holds, for its subtree, the maximum
// free cpu, memory and disk and the union of the feature bits. A fitting
// worker's weighted free size is at least the demand's, so the best fit is
// the first entry at or after the weighted demand that fits; the search
// descends leftmost-first and skips every subtree whose maxima or feature
// union show that no worker in it can fit (best fit leaves many workers that
// are short in one dimension as the cluster fills). The search visits the
// workers that have enough cores but too little memory or disk and sort
// before the answer; it is O(log n) when few workers are like that and
// degrades towards O(n) when most are (a memory-bound workload on a cluster
// fragmented by best fit).
//
// Features get bits in order of first appearance (up to 63; bit 63 stands
// for "some feature beyond those"). A required feature that was never seen
// cannot be satisfied. Bits only prune; the answer is the same for any
// assignment of bits, and nodes with overflow features are checked by name.
// Treap priorities are a hash of the node id, so the shape is deterministic
// too (not that answers depend on it).
//
// Integer only; iteration is over ordered containers only; no pointers are
// compared. Not thread-safe.
#ifndef BLIXARD_CORE_SM_PLACEMENT_INDEX_H_
#define BLIXARD_CORE_SM_PLACEMENT_INDEX_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace blixard::sm {

inline constexpr uint64_t kScoreWeightCpu = uint64_t{1} << 33;
inline constexpr uint64_t kScoreWeightMemory = 1;
inline constexpr uint64_t kScoreWeightDisk = 64;

// Resource amounts. Every amount stored by the state machine is bounded by
// the kWorker*Max limits (cluster_state_machine.h), so weighted sizes stay
// below 2^50 and never overflow.
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

// kScoreWeightCpu * cpu + kScoreWeightMemory * memory + kScoreWeightDisk *
// disk.
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

  // CHECKs the treap's order, heap property and subtree aggregates.
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
  static constexpr int32_t kNil = -1;
  static constexpr int kFeatureBitsMax = 63;
  static constexpr uint64_t kOverflowBit = uint64_t{1} << 63;
  struct Node {
    Entry entry;
    uint64_t priority = 0;
    int32_t left = kNil;
    int32_t right = kNil;
    uint64_t features_mask = 0;
    Amounts max_free;         // per-dimension maximum over the subtree
    uint64_t union_mask = 0;  // OR of features_mask over the subtree
    std::vector<std::string> features;
  };
  struct Query {
    Amounts need;
    uint64_t mask;
    bool check_names;  // a required feature has no bit of its own
    const std::vector<std::string>* required;
    uint64_t exclude;
  };

  // The feature bits of a worker, giving new features the next free bit.
  uint64_t AssignMask(const std::vector<std::string>& features);
  int32_t NewNode(const Entry& entry);
  void Pull(int32_t t);
  // Splits t into keys < key (l) and keys >= key (r).
  void Split(int32_t t, const Entry& key, int32_t& l, int32_t& r);
  int32_t Merge(int32_t a, int32_t b);
  void Insert(int32_t node);
  void Erase(int32_t node);
  bool Fits(const Node& n, const Query& q) const;
  // The first entry >= probe that fits the query.
  int32_t Find(int32_t t, const Entry& probe, const Query& q) const;
  // CHECKs order, heap and aggregates; returns the subtree size.
  size_t CheckSubtree(int32_t t, const Entry* lo, const Entry* hi) const;

  int32_t root_ = kNil;
  std::vector<Node> pool_;
  std::vector<int32_t> free_nodes_;
  absl::flat_hash_map<uint64_t, int32_t>
      nodes_;                                // lookups only, never iterated
  std::map<std::string, int> feature_bits_;  // lookups only in decisions
};

// Joins sorted features into one key ("a\0b").
std::string FeatureKey(const std::vector<std::string>& features);

}  // namespace blixard::sm

#endif  // BLIXARD_CORE_SM_PLACEMENT_INDEX_H_
