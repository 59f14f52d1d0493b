#include "core/sm/placement_index.h"

#include <algorithm>
#include <utility>

#include "core/base/check.h"

namespace blixard::sm {

uint64_t WeightedSize(const Amounts& amounts) {
  return kScoreWeightCpu * amounts.cpu_cores +
         kScoreWeightMemory * amounts.memory_mb +
         kScoreWeightDisk * amounts.disk_gb;
}

bool HasFeatures(const std::vector<std::string>& have,
                 const std::vector<std::string>& need) {
  return std::includes(have.begin(), have.end(), need.begin(), need.end());
}

std::string FeatureKey(const std::vector<std::string>& features) {
  std::string key;
  for (size_t i = 0; i < features.size(); ++i) {
    if (i > 0) key.push_back('\0');
    key.append(features[i]);
  }
  return key;
}

uint64_t NaiveBestFit(const std::vector<NaiveCandidate>& workers,
                      const Amounts& need,
                      const std::vector<std::string>& required_features,
                      uint64_t exclude) {
  uint64_t best_node = 0;
  uint64_t best_score = 0;
  for (const NaiveCandidate& worker : workers) {
    if (!worker.online || worker.node_id == exclude) continue;
    if (!worker.free.Covers(need)) continue;
    if (!HasFeatures(worker.features, required_features)) continue;
    const uint64_t score =
        kScoreWeightCpu * (worker.free.cpu_cores - need.cpu_cores) +
        kScoreWeightMemory * (worker.free.memory_mb - need.memory_mb) +
        kScoreWeightDisk * (worker.free.disk_gb - need.disk_gb);
    if (best_node == 0 || score < best_score ||
        (score == best_score && worker.node_id < best_node)) {
      best_node = worker.node_id;
      best_score = score;
    }
  }
  return best_node;
}

void PlacementIndex::UpdateFree(uint64_t node_id, const Amounts& free) {
  auto it = nodes_.find(node_id);
  CHECK(it != nodes_.end()) << "worker " << node_id << " is not indexed";
  Slot& slot = it->second;
  if (slot.entry.free == free) return;
  const Entry entry{WeightedSize(free), node_id, free};
  const size_t erased = slot.group->entries.erase(slot.entry);
  CHECK_EQ(erased, 1u);
  slot.entry = entry;
  CHECK(slot.group->entries.insert(entry).second);
}

void PlacementIndex::Add(uint64_t node_id, const Amounts& free,
                         const std::vector<std::string>& features) {
  CHECK_NE(node_id, 0u);
  CHECK(!nodes_.contains(node_id)) << "worker " << node_id << " added twice";
  DCHECK(std::is_sorted(features.begin(), features.end()));
  const Entry entry{WeightedSize(free), node_id, free};
  std::string key = FeatureKey(features);
  auto group_it = groups_.find(key);
  if (group_it == groups_.end()) {
    auto group = std::make_unique<Group>();
    group->features = features;
    group_it = groups_.emplace(std::move(key), std::move(group)).first;
    covering_cache_.clear();
  }
  Group* group = group_it->second.get();
  CHECK(group->entries.insert(entry).second);
  nodes_.emplace(node_id, Slot{group, entry});
}

void PlacementIndex::Remove(uint64_t node_id) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return;
  const size_t erased = it->second.group->entries.erase(it->second.entry);
  CHECK_EQ(erased, 1u);
  nodes_.erase(it);
}

Amounts PlacementIndex::Free(uint64_t node_id) const {
  auto it = nodes_.find(node_id);
  CHECK(it != nodes_.end()) << "worker " << node_id << " is not indexed";
  return it->second.entry.free;
}

const std::vector<PlacementIndex::Group*>& PlacementIndex::GroupsCovering(
    const std::vector<std::string>& required_features) const {
  std::string key = FeatureKey(required_features);
  auto it = covering_cache_.find(key);
  if (it != covering_cache_.end()) return it->second;
  std::vector<Group*> covering;
  for (const auto& [group_key, group] : groups_) {
    if (HasFeatures(group->features, required_features)) {
      covering.push_back(group.get());
    }
  }
  return covering_cache_.emplace(std::move(key), std::move(covering))
      .first->second;
}

uint64_t PlacementIndex::BestFit(
    const Amounts& need, const std::vector<std::string>& required_features,
    uint64_t exclude) const {
  DCHECK(std::is_sorted(required_features.begin(), required_features.end()));
  if (nodes_.empty()) return 0;
  const Entry probe{WeightedSize(need), 0, Amounts{}};
  bool found = false;
  Entry best{0, 0, Amounts{}};
  for (const Group* group : GroupsCovering(required_features)) {
    for (auto it = group->entries.lower_bound(probe);
         it != group->entries.end(); ++it) {
      if (found && !(*it < best)) break;  // cannot beat the best so far
      if (it->node_id == exclude) continue;
      if (it->free.Covers(need)) {
        best = *it;
        found = true;
        break;  // the first fit in a group is that group's best
      }
    }
  }
  return found ? best.node_id : 0;
}

void PlacementIndex::CheckInvariants() const {
  size_t entries = 0;
  for (const auto& [key, group] : groups_) {
    CHECK_EQ(key, FeatureKey(group->features));
    entries += group->entries.size();
    for (const Entry& entry : group->entries) {
      CHECK_EQ(entry.weighted_free, WeightedSize(entry.free));
      auto it = nodes_.find(entry.node_id);
      CHECK(it != nodes_.end()) << "stale entry for worker " << entry.node_id;
      CHECK(it->second.group == group.get());
      CHECK(it->second.entry.free == entry.free);
    }
  }
  CHECK_EQ(entries, nodes_.size());
}

}  // namespace blixard::sm
