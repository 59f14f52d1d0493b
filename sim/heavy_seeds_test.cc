// Issue #6's acceptance sweep, in every `bazel test`: `blixard sim
// --seed=S --faults=heavy` (5 nodes, 60 virtual seconds, mixed workload)
// passes every oracle for seeds 1 to 200, and each of those runs really
// injected crashes, restarts, a partition of some kind and message loss,
// and completed client operations. Four shards of 50 seeds run in parallel.
#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "sim/fault_schedule.h"
#include "sim/simulation.h"

namespace blixard::sim {
namespace {

uint64_t Count(const SimulationReport& report, const std::string& kind) {
  auto it = report.faults.find(kind);
  return it == report.faults.end() ? 0 : it->second;
}

class HeavySeedsTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(HeavySeedsTest, EverySeedPassesWithEveryFaultKindInjected) {
  const uint64_t first = GetParam();
  for (uint64_t seed = first; seed < first + 50; ++seed) {
    SimulationOptions options;  // the CLI's defaults: 5 nodes, 60 s, mixed
    options.seed = seed;
    options.faults = FaultProfile::kHeavy;
    const SimulationReport report = RunSimulation(options);
    ASSERT_TRUE(report.passed) << "seed " << seed << ": " << report.failure;
    EXPECT_GT(Count(report, "crash"), 0u) << "seed " << seed;
    EXPECT_GT(Count(report, "restart"), 0u) << "seed " << seed;
    EXPECT_GT(Count(report, "partition") + Count(report, "partition_one_way") +
                  Count(report, "isolate") + Count(report, "bridge"),
              0u)
        << "seed " << seed;
    EXPECT_GT(Count(report, "lost_packets"), 0u) << "seed " << seed;
    EXPECT_GT(report.clients.ok, 0u) << "seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds1To200, HeavySeedsTest,
                         ::testing::Values(1u, 51u, 101u, 151u));

}  // namespace
}  // namespace blixard::sim
