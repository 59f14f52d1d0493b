#include "sim/planted_bug_search.h"

#include "core/base/planted_bug_testing.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

SimulationOptions QuietRun(uint64_t seed) {
  SimulationOptions options;
  options.seed = seed;
  options.nodes = 3;
  options.faults = FaultProfile::kNone;
  options.duration_us = 3'000'000;
  return options;
}

TEST(PlantedBugSearchTest, HealthyRunsFindNothing) {
  const PlantedBugSearchResult result = FindFailingSeed(QuietRun, 5, 7);
  EXPECT_FALSE(result.found);
  EXPECT_EQ(result.seeds_run, 3u);
  EXPECT_EQ(result.bug, PlantedBug::kNone);
  EXPECT_TRUE(result.unplanted_failures.empty());
}

// Acking at append time is caught on the first write, without any fault.
TEST(PlantedBugSearchTest, FindsTheFirstSeedThePlantedBugBreaks) {
  ScopedPlantedBugForTesting planted(PlantedBug::kAckBeforeDurable);
  const PlantedBugSearchResult result = FindFailingSeed(QuietRun, 5, 7);
  ASSERT_TRUE(result.found);
  EXPECT_EQ(result.seed, 5u);
  EXPECT_EQ(result.seeds_run, 1u);
  EXPECT_EQ(result.bug, PlantedBug::kAckBeforeDurable);
  EXPECT_EQ(result.report.planted_bug, PlantedBug::kAckBeforeDurable);
  EXPECT_EQ(result.report.violation_property, "acknowledged_writes_durable");
  EXPECT_TRUE(result.unplanted_failures.empty());
}

TEST(PlantedBugSearchTest, OptionsAreValidAndCarryTheSeed) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const SimulationOptions options = PlantedBugSearchOptions(seed);
    EXPECT_EQ(options.seed, seed);
    EXPECT_TRUE(options.Validate().ok());
  }
}

}  // namespace
}  // namespace blixard::sim
