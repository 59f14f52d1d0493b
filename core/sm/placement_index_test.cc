#include "core/sm/placement_index.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/base/rng.h"
#include "gtest/gtest.h"

namespace blixard::sm {
namespace {

const std::vector<std::string> kFeaturePool = {"arm", "gpu", "nvme", "ssd",
                                               "x86"};

std::vector<std::string> RandomFeatures(Rng& rng, uint64_t max_count) {
  std::vector<std::string> features;
  const uint64_t count = rng.Uniform(max_count + 1);
  for (uint64_t i = 0; i < count; ++i) {
    features.push_back(kFeaturePool[rng.Uniform(kFeaturePool.size())]);
  }
  std::sort(features.begin(), features.end());
  features.erase(std::unique(features.begin(), features.end()), features.end());
  return features;
}

Amounts RandomAmounts(Rng& rng, uint64_t scale) {
  return Amounts{rng.Uniform(scale + 1), rng.Uniform(scale * 64 + 1),
                 rng.Uniform(scale * 4 + 1)};
}

TEST(PlacementIndexTest, EmptyIndexPlacesNothing) {
  PlacementIndex index;
  EXPECT_EQ(index.BestFit(Amounts{1, 1, 1}, {}), 0u);
  EXPECT_TRUE(index.empty());
}

TEST(PlacementIndexTest, BestFitPrefersSmallestLeftoverThenLowestId) {
  PlacementIndex index;
  index.Add(5, Amounts{8, 1000, 100}, {});
  index.Add(3, Amounts{4, 1000, 100}, {});
  index.Add(9, Amounts{4, 1000, 100}, {"gpu"});
  // Workers 3 and 9 tie on leftover; 3 has the lower id.
  EXPECT_EQ(index.BestFit(Amounts{2, 100, 10}, {}), 3u);
  EXPECT_EQ(index.BestFit(Amounts{2, 100, 10}, {"gpu"}), 9u);
  EXPECT_EQ(index.BestFit(Amounts{6, 100, 10}, {}), 5u);
  EXPECT_EQ(index.BestFit(Amounts{9, 100, 10}, {}), 0u);
  EXPECT_EQ(index.BestFit(Amounts{2, 100, 10}, {}, /*exclude=*/3), 9u);
  index.UpdateFree(3, Amounts{1, 1000, 100});
  EXPECT_EQ(index.BestFit(Amounts{2, 100, 10}, {}), 9u);
  index.Remove(9);
  EXPECT_EQ(index.BestFit(Amounts{2, 100, 10}, {}), 5u);
  index.CheckInvariants();
}

TEST(PlacementIndexTest, BiggerOverallButShortInOneDimensionIsSkipped) {
  PlacementIndex index;
  index.Add(1, Amounts{100, 10, 10}, {});  // huge cpu, little memory
  index.Add(2, Amounts{2, 2000, 10}, {});
  EXPECT_EQ(index.BestFit(Amounts{1, 1000, 1}, {}), 2u);
}

// The index must give exactly the naive rule's answer on random inputs,
// including after random updates and removals.
TEST(PlacementIndexTest, MatchesNaiveRuleOnRandomInputs) {
  for (uint64_t seed = 1; seed <= 1000; ++seed) {
    Rng rng(seed);
    PlacementIndex index;
    std::map<uint64_t, NaiveCandidate> workers;
    const uint64_t worker_count = rng.Range(1, 40);
    const uint64_t scale = rng.Range(1, 16);
    for (uint64_t i = 0; i < worker_count; ++i) {
      NaiveCandidate c;
      c.node_id = rng.Range(1, 60);
      if (workers.count(c.node_id) > 0) continue;
      c.online = rng.Chance(4, 5);
      c.free = RandomAmounts(rng, scale);
      c.features = RandomFeatures(rng, 3);
      if (c.online) index.Add(c.node_id, c.free, c.features);
      workers[c.node_id] = c;
    }
    for (int step = 0; step < 60; ++step) {
      if (rng.Chance(1, 4) && !workers.empty()) {
        // Mutate one worker: change free capacity, or flip online.
        auto it = workers.begin();
        std::advance(it, static_cast<long>(rng.Uniform(workers.size())));
        NaiveCandidate& c = it->second;
        if (rng.Chance(1, 3)) {
          c.online = !c.online;
          if (c.online) {
            index.Add(c.node_id, c.free, c.features);
          } else {
            index.Remove(c.node_id);
          }
        } else {
          c.free = RandomAmounts(rng, scale);
          if (c.online) index.UpdateFree(c.node_id, c.free);
        }
      }
      const Amounts need = RandomAmounts(rng, scale / 2 + 1);
      const std::vector<std::string> required = RandomFeatures(rng, 2);
      const uint64_t exclude = rng.Chance(1, 5) ? rng.Range(1, 60) : 0;
      std::vector<NaiveCandidate> list;
      for (const auto& [id, c] : workers) list.push_back(c);
      // Insertion order must not matter to the naive rule either.
      if (rng.Chance(1, 2)) std::reverse(list.begin(), list.end());
      ASSERT_EQ(index.BestFit(need, required, exclude),
                NaiveBestFit(list, need, required, exclude))
          << "seed " << seed << " step " << step;
    }
    index.CheckInvariants();
  }
}

// More distinct features than the index has bits: the overflow features are
// matched by name, and answers still equal the naive rule's.
TEST(PlacementIndexTest, ManyDistinctFeaturesStillMatchNaiveRule) {
  Rng rng(99);
  PlacementIndex index;
  std::vector<NaiveCandidate> workers;
  for (uint64_t id = 1; id <= 200; ++id) {
    NaiveCandidate c;
    c.node_id = id;
    c.online = true;
    c.free = RandomAmounts(rng, 8);
    for (int i = 0; i < 3; ++i) {
      c.features.push_back("f" + std::to_string(rng.Uniform(100)));
    }
    std::sort(c.features.begin(), c.features.end());
    c.features.erase(std::unique(c.features.begin(), c.features.end()),
                     c.features.end());
    index.Add(id, c.free, c.features);
    workers.push_back(c);
  }
  index.CheckInvariants();
  for (int q = 0; q < 2000; ++q) {
    std::vector<std::string> required;
    const uint64_t n = rng.Uniform(3);
    for (uint64_t i = 0; i < n; ++i) {
      required.push_back("f" + std::to_string(rng.Uniform(110)));
    }
    std::sort(required.begin(), required.end());
    required.erase(std::unique(required.begin(), required.end()),
                   required.end());
    const Amounts need = RandomAmounts(rng, 3);
    ASSERT_EQ(index.BestFit(need, required),
              NaiveBestFit(workers, need, required))
        << "query " << q;
  }
}

}  // namespace
}  // namespace blixard::sm
