#include "sim/coverage_sweep.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/check.h"

namespace blixard::sim {

std::vector<CoverageMark> CoverageSweepResult::Missed() const {
  std::vector<CoverageMark> missed;
  for (size_t i = 0; i < kCoverageMarkCount; ++i) {
    if (hits[i] == 0) missed.push_back(CoverageMarkAt(i));
  }
  return missed;
}

std::string CoverageSweepResult::Table() const {
  std::string out;
  for (size_t i = 0; i < kCoverageMarkCount; ++i) {
    absl::StrAppendFormat(&out, "%-38s %6d seeds %8d hits\n", CoverageMarkName(CoverageMarkAt(i)),
                          seeds_hit[i], hits[i]);
  }
  return out;
}

CoverageSweepResult RunCoverageSweep(const std::function<SimulationOptions(uint64_t)>& options_factory,
                                     uint64_t first_seed, uint64_t last_seed) {
  CHECK_LE(first_seed, last_seed);
  CoverageSweepResult result;
  for (uint64_t seed = first_seed; seed <= last_seed; ++seed) {
    const SimulationOptions options = options_factory(seed);
    CHECK_EQ(options.seed, seed) << "the options factory must set the seed";
    const SimulationReport report = RunSimulation(options);
    ++result.seeds;
    for (size_t i = 0; i < kCoverageMarkCount; ++i) {
      result.hits[i] += report.coverage_marks[i];
      if (report.coverage_marks[i] > 0) ++result.seeds_hit[i];
    }
    if (!report.passed) result.failures.emplace_back(seed, report.failure);
  }
  return result;
}

SimulationOptions CoverageSweepOptions(uint64_t seed) {
  SimulationOptions options;
  options.seed = seed;
  options.faults = FaultProfile::kSwarm;
  options.duration_us = 30'000'000;
  // Snapshots often enough that lagging nodes catch up by snapshot,
  // partitioned or not.
  options.snapshot_interval_entries = 60;
  options.log_retain_entries = 20;
  return ResolveSwarm(options);
}

}  // namespace blixard::sim
