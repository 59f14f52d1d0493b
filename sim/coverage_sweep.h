// Coverage sweep: runs a range of seeds in this process and adds up the
// coverage marks (core/base/coverage_mark.h) each run reports, to show
// which rare paths a fault mix reaches and which it never does.
//
//   CoverageSweepResult sweep = RunCoverageSweep(CoverageSweepOptions, 1, 500);
//   for (CoverageMark mark : sweep.Missed()) { ... }
//
// `blixard sim --seeds=A-B` does the same across forked workers; this one
// is for tests. Deterministic; seeds run one after another.
#ifndef BLIXARD_SIM_COVERAGE_SWEEP_H_
#define BLIXARD_SIM_COVERAGE_SWEEP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/base/coverage_mark.h"
#include "sim/simulation.h"

namespace blixard::sim {

struct CoverageSweepResult {
  uint64_t seeds = 0;
  CoverageMarkCounts hits = {};       // total hits per mark
  CoverageMarkCounts seeds_hit = {};  // seeds that hit each mark
  // Failing seeds with their violation (a coverage sweep should pass).
  std::vector<std::pair<uint64_t, std::string>> failures;

  // Marks no seed hit, in declaration order.
  std::vector<CoverageMark> Missed() const;
  // "name: N seeds, M hits" per mark, one per line.
  std::string Table() const;
};

// REQUIRES: first_seed <= last_seed; options_factory sets the seed.
CoverageSweepResult RunCoverageSweep(const std::function<SimulationOptions(uint64_t)>& options_factory,
                                     uint64_t first_seed, uint64_t last_seed);

// The runs the coverage test sweeps: swarm runs of 30 s of virtual time
// (membership changes race elections, crashes tear writes, partitions leave
// nodes behind) with snapshots every 60 entries keeping 20, so lagging nodes
// catch up by snapshot. The same sweep from the command line:
// `blixard sim --seeds=1-500 --faults=swarm --duration=30s
// --snapshot_interval=60 --log_retain=20`.
SimulationOptions CoverageSweepOptions(uint64_t seed);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_COVERAGE_SWEEP_H_
