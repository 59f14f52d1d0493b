// Planted-bug search: sweeps seeds until the simulator's oracles catch the
// bug planted in this process (core/base/planted_bug.h), to prove that they
// can (issue 7, "test the tester").
//
//   ScopedPlantedBugForTesting planted(PlantedBug::kCommitPreviousTerm);
//   PlantedBugSearchResult found =
//       FindFailingSeed(PlantedBugSearchOptions, /*first_seed=*/1, /*last_seed=*/2000);
//   // found.found, found.seed, found.report.violation_property
//
// A seed only counts as the bug's finding if it passes with nothing planted:
// a seed that fails either way exposes some other bug (or an oracle's false
// alarm), is listed in `unplanted_failures` and the search goes on. That
// keeps a pre-existing failure from passing for the planted bug's.
//
// Test-only (it switches the planted bug). Runs seeds one after another in
// this process; deterministic like RunSimulation.
#ifndef BLIXARD_SIM_PLANTED_BUG_SEARCH_H_
#define BLIXARD_SIM_PLANTED_BUG_SEARCH_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "core/base/planted_bug.h"
#include "sim/simulation.h"

namespace blixard::sim {

// Builds the options of the run for one seed (the seed set in them).
using SimulationOptionsFactory = std::function<SimulationOptions(uint64_t seed)>;

struct PlantedBugSearchResult {
  PlantedBug bug = PlantedBug::kNone;  // planted during the search
  bool found = false;
  uint64_t seed = 0;          // the first seed the bug alone makes fail
  SimulationReport report;    // that seed's report (with the bug planted)
  uint64_t seeds_run = 0;     // seeds tried, the found one included
  // Seeds that failed with the bug planted AND without it (not counted).
  std::vector<uint64_t> unplanted_failures;
};

// Runs first_seed, first_seed+1, ... last_seed with the currently planted
// bug until one fails (see the file comment); found = false when none does.
// With nothing planted it simply finds the first failing seed.
// REQUIRES: first_seed <= last_seed; options_factory returns valid options.
PlantedBugSearchResult FindFailingSeed(const SimulationOptionsFactory& options_factory,
                                       uint64_t first_seed, uint64_t last_seed);

// The runs the planted-bug tests search: swarm runs (cluster size, timing,
// network, faults, membership changes and workload drawn per seed, the
// read-heavy kv_reads workload among them) of 30 s of virtual time.
SimulationOptions PlantedBugSearchOptions(uint64_t seed);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_PLANTED_BUG_SEARCH_H_
