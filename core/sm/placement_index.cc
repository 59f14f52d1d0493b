#include "core/sm/placement_index.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

#include "core/base/check.h"
#include "core/base/rng.h"

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

uint64_t PlacementIndex::AssignMask(const std::vector<std::string>& features) {
  uint64_t mask = 0;
  for (const std::string& f : features) {
    auto it = feature_bits_.find(f);
    if (it == feature_bits_.end() &&
        feature_bits_.size() < static_cast<size_t>(kFeatureBitsMax)) {
      const int bit = static_cast<int>(feature_bits_.size());
      it = feature_bits_.emplace(f, bit).first;
    }
    mask |=
        it != feature_bits_.end() ? uint64_t{1} << it->second : kOverflowBit;
  }
  return mask;
}

int32_t PlacementIndex::NewNode(const Entry& entry) {
  int32_t t;
  if (!free_nodes_.empty()) {
    t = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    CHECK_LT(pool_.size(), static_cast<size_t>(INT32_MAX));
    t = static_cast<int32_t>(pool_.size());
    pool_.emplace_back();
  }
  Node& n = pool_[static_cast<size_t>(t)];
  n.entry = entry;
  uint64_t state = entry.node_id;
  n.priority = SplitMix64(state);
  n.left = kNil;
  n.right = kNil;
  n.max_free = entry.free;
  return t;
}

void PlacementIndex::Pull(int32_t t) {
  Node& n = pool_[static_cast<size_t>(t)];
  n.max_free = n.entry.free;
  n.union_mask = n.features_mask;
  for (const int32_t child : {n.left, n.right}) {
    if (child == kNil) continue;
    const Node& c = pool_[static_cast<size_t>(child)];
    n.max_free.cpu_cores = std::max(n.max_free.cpu_cores, c.max_free.cpu_cores);
    n.max_free.memory_mb = std::max(n.max_free.memory_mb, c.max_free.memory_mb);
    n.max_free.disk_gb = std::max(n.max_free.disk_gb, c.max_free.disk_gb);
    n.union_mask |= c.union_mask;
  }
}

void PlacementIndex::Split(int32_t t, const Entry& key, int32_t& l,
                           int32_t& r) {
  if (t == kNil) {
    l = kNil;
    r = kNil;
    return;
  }
  if (pool_[static_cast<size_t>(t)].entry < key) {
    int32_t right_l = kNil;
    Split(pool_[static_cast<size_t>(t)].right, key, right_l, r);
    pool_[static_cast<size_t>(t)].right = right_l;
    l = t;
  } else {
    int32_t left_r = kNil;
    Split(pool_[static_cast<size_t>(t)].left, key, l, left_r);
    pool_[static_cast<size_t>(t)].left = left_r;
    r = t;
  }
  Pull(t);
}

int32_t PlacementIndex::Merge(int32_t a, int32_t b) {
  if (a == kNil) return b;
  if (b == kNil) return a;
  const Node& na = pool_[static_cast<size_t>(a)];
  const Node& nb = pool_[static_cast<size_t>(b)];
  if (na.priority > nb.priority ||
      (na.priority == nb.priority && na.entry.node_id < nb.entry.node_id)) {
    const int32_t merged = Merge(na.right, b);
    pool_[static_cast<size_t>(a)].right = merged;
    Pull(a);
    return a;
  }
  const int32_t merged = Merge(a, nb.left);
  pool_[static_cast<size_t>(b)].left = merged;
  Pull(b);
  return b;
}

void PlacementIndex::Insert(int32_t node) {
  int32_t l = kNil, r = kNil;
  Split(root_, pool_[static_cast<size_t>(node)].entry, l, r);
  root_ = Merge(Merge(l, node), r);
}

void PlacementIndex::Erase(int32_t node) {
  const Entry key = pool_[static_cast<size_t>(node)].entry;
  Entry after = key;
  after.node_id = key.node_id + 1;  // keys are unique by node id
  int32_t l = kNil, mid = kNil, r = kNil;
  Split(root_, key, l, r);
  Split(r, after, mid, r);
  CHECK_EQ(mid, node) << "treap lost worker " << key.node_id;
  root_ = Merge(l, r);
  Node& n = pool_[static_cast<size_t>(node)];
  n.left = kNil;
  n.right = kNil;
  Pull(node);
}

bool PlacementIndex::Fits(const Node& n, const Query& q) const {
  if (n.entry.node_id == q.exclude) return false;
  if (!n.entry.free.Covers(q.need)) return false;
  if ((n.features_mask & q.mask) != q.mask) return false;
  return !q.check_names || HasFeatures(n.features, *q.required);
}

int32_t PlacementIndex::Find(int32_t t, const Entry& probe,
                             const Query& q) const {
  while (t != kNil) {
    const Node& n = pool_[static_cast<size_t>(t)];
    // Nothing in this subtree can fit.
    if (!n.max_free.Covers(q.need) || (n.union_mask & q.mask) != q.mask) {
      return kNil;
    }
    if (n.entry < probe) {
      t = n.right;  // this node and its left subtree are below the probe
      continue;
    }
    const int32_t found = Find(n.left, probe, q);
    if (found != kNil) return found;
    if (Fits(n, q)) return t;
    t = n.right;
  }
  return kNil;
}

void PlacementIndex::UpdateFree(uint64_t node_id, const Amounts& free) {
  auto it = nodes_.find(node_id);
  CHECK(it != nodes_.end()) << "worker " << node_id << " is not indexed";
  const int32_t node = it->second;
  if (pool_[static_cast<size_t>(node)].entry.free == free) return;
  Erase(node);
  Node& n = pool_[static_cast<size_t>(node)];
  n.entry = Entry{WeightedSize(free), node_id, free};
  Pull(node);
  Insert(node);
}

void PlacementIndex::Add(uint64_t node_id, const Amounts& free,
                         const std::vector<std::string>& features) {
  CHECK_NE(node_id, 0u);
  CHECK(!nodes_.contains(node_id)) << "worker " << node_id << " added twice";
  DCHECK(std::is_sorted(features.begin(), features.end()));
  const uint64_t mask = AssignMask(features);
  const int32_t node = NewNode(Entry{WeightedSize(free), node_id, free});
  Node& n = pool_[static_cast<size_t>(node)];
  n.features = features;
  n.features_mask = mask;
  Pull(node);
  Insert(node);
  nodes_.emplace(node_id, node);
}

void PlacementIndex::Remove(uint64_t node_id) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return;
  Erase(it->second);
  Node& n = pool_[static_cast<size_t>(it->second)];
  n.features.clear();
  n.features_mask = 0;
  free_nodes_.push_back(it->second);
  nodes_.erase(it);
}

Amounts PlacementIndex::Free(uint64_t node_id) const {
  auto it = nodes_.find(node_id);
  CHECK(it != nodes_.end()) << "worker " << node_id << " is not indexed";
  return pool_[static_cast<size_t>(it->second)].entry.free;
}

uint64_t PlacementIndex::BestFit(
    const Amounts& need, const std::vector<std::string>& required_features,
    uint64_t exclude) const {
  DCHECK(std::is_sorted(required_features.begin(), required_features.end()));
  if (root_ == kNil) return 0;
  Query q{need, 0, false, &required_features, exclude};
  for (const std::string& f : required_features) {
    auto it = feature_bits_.find(f);
    if (it != feature_bits_.end()) {
      q.mask |= uint64_t{1} << it->second;
    } else if (feature_bits_.size() < static_cast<size_t>(kFeatureBitsMax)) {
      return 0;  // never seen on any worker, so no worker has it
    } else {
      q.mask |= kOverflowBit;
      q.check_names = true;
    }
  }
  const Entry probe{WeightedSize(need), 0, Amounts{}};
  const int32_t t = Find(root_, probe, q);
  return t == kNil ? 0 : pool_[static_cast<size_t>(t)].entry.node_id;
}

size_t PlacementIndex::CheckSubtree(int32_t t, const Entry* lo,
                                    const Entry* hi) const {
  if (t == kNil) return 0;
  const Node& n = pool_[static_cast<size_t>(t)];
  if (lo != nullptr) CHECK(*lo < n.entry) << "treap out of order";
  if (hi != nullptr) CHECK(n.entry < *hi) << "treap out of order";
  CHECK_EQ(n.entry.weighted_free, WeightedSize(n.entry.free));
  Amounts max = n.entry.free;
  uint64_t mask = n.features_mask;
  for (const int32_t child : {n.left, n.right}) {
    if (child == kNil) continue;
    const Node& c = pool_[static_cast<size_t>(child)];
    CHECK(c.priority < n.priority ||
          (c.priority == n.priority && n.entry.node_id < c.entry.node_id))
        << "treap heap order broken";
    max.cpu_cores = std::max(max.cpu_cores, c.max_free.cpu_cores);
    max.memory_mb = std::max(max.memory_mb, c.max_free.memory_mb);
    max.disk_gb = std::max(max.disk_gb, c.max_free.disk_gb);
    mask |= c.union_mask;
  }
  CHECK(max == n.max_free) << "treap maxima stale at worker "
                           << n.entry.node_id;
  CHECK_EQ(mask, n.union_mask);
  auto it = nodes_.find(n.entry.node_id);
  CHECK(it != nodes_.end()) << "stale entry for worker " << n.entry.node_id;
  CHECK_EQ(it->second, t);
  return 1 + CheckSubtree(n.left, lo, &n.entry) +
         CheckSubtree(n.right, &n.entry, hi);
}

void PlacementIndex::CheckInvariants() const {
  const size_t entries = CheckSubtree(root_, nullptr, nullptr);
  CHECK_EQ(entries, nodes_.size());
  CHECK_EQ(entries + free_nodes_.size(), pool_.size());
  for (const auto& [node_id, node] : nodes_) {
    const Node& n = pool_[static_cast<size_t>(node)];
    CHECK_EQ(n.entry.node_id, node_id);
    bool overflow = false;
    uint64_t mask = 0;
    for (const std::string& f : n.features) {
      auto it = feature_bits_.find(f);
      if (it == feature_bits_.end()) {
        overflow = true;
      } else {
        mask |= uint64_t{1} << it->second;
      }
    }
    if (overflow) mask |= kOverflowBit;
    CHECK_EQ(mask, n.features_mask);
  }
}

}  // namespace blixard::sm
