#include "sim/planted_bug_search.h"

#include "core/base/check.h"
#include "core/base/planted_bug_testing.h"

namespace blixard::sim {

PlantedBugSearchResult FindFailingSeed(const SimulationOptionsFactory& options_factory,
                                       uint64_t first_seed, uint64_t last_seed) {
  CHECK_LE(first_seed, last_seed);
  PlantedBugSearchResult result;
  result.bug = ActivePlantedBug();
  // Bounded by the seed range.
  for (uint64_t seed = first_seed; seed <= last_seed; ++seed) {
    SimulationOptions options = options_factory(seed);
    CHECK_EQ(options.seed, seed) << "the options factory must set the seed";
    ++result.seeds_run;
    SimulationReport report = RunSimulation(options);
    if (report.passed) continue;
    if (result.bug != PlantedBug::kNone) {
      ScopedPlantedBugForTesting unplanted(PlantedBug::kNone);
      if (!RunSimulation(options).passed) {
        result.unplanted_failures.push_back(seed);
        continue;
      }
    }
    result.found = true;
    result.seed = seed;
    result.report = std::move(report);
    return result;
  }
  return result;
}

SimulationOptions PlantedBugSearchOptions(uint64_t seed) {
  SimulationOptions options;
  options.seed = seed;
  options.faults = FaultProfile::kSwarm;
  options.duration_us = 30'000'000;
  return ResolveSwarm(options);
}

}  // namespace blixard::sim
