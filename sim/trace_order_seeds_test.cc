// Issue 13, point 11, in every `bazel test`: the traces of many swarm and
// heavy seeds are in causal order as an independent reader sees them
// (sim/checker/trace_order.h): apply indexes consecutive per node
// lifetime, from 1 or after a snapshot line, time never going back. Each
// run checks its own trace as it goes (check_trace_order) and the whole
// text is read again afterwards; the shards together must have seen
// snapshots, self-stops and restarts, or the check proved little.
// Four shards run in parallel.
#include <cstdint>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "sim/checker/trace_order.h"
#include "sim/fault_schedule.h"
#include "sim/simulation.h"

namespace blixard::sim {
namespace {

// Seeds per shard and profile: about 60 s of test time in all on a
// loaded two-core machine with expensive checks on.
constexpr uint64_t kSwarmSeedsPerShard = 20;
constexpr uint64_t kHeavySeedsPerShard = 6;

struct Seen {
  uint64_t applies = 0;
  uint64_t snapshots = 0;
  uint64_t restarts = 0;
  uint64_t stops = 0;
};

void RunAndRead(FaultProfile faults, uint64_t seed, Seen* seen) {
  std::ostringstream trace;
  SimulationOptions options;
  options.seed = seed;
  options.faults = faults;
  options.trace = &trace;
  options.check_trace_order = true;
  const SimulationReport report = RunSimulation(options);
  ASSERT_TRUE(report.passed) << FaultProfileName(faults) << " seed " << seed << ": "
                             << report.failure;
  EXPECT_FALSE(report.recovery_impossible)
      << FaultProfileName(faults) << " seed " << seed << ": " << report.recovery_detail;
  const std::string text = trace.str();
  TraceOrderChecker checker;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    ASSERT_NE(end, std::string::npos) << "the trace ends in a newline";
    const absl::string_view line = absl::string_view(text).substr(start, end - start);
    ASSERT_TRUE(checker.AddLine(line).ok())
        << FaultProfileName(faults) << " seed " << seed << ": " << checker.status();
    if (line.find("\"type\":\"stop\"") != absl::string_view::npos) ++seen->stops;
    start = end + 1;
  }
  seen->applies += checker.applies();
  seen->snapshots += checker.snapshots();
  seen->restarts += checker.restarts();
}

class TraceOrderSeedsTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(TraceOrderSeedsTest, EveryTraceIsInCausalOrder) {
  const uint64_t shard = GetParam();
  Seen seen;
  for (uint64_t i = 0; i < kSwarmSeedsPerShard; ++i) {
    RunAndRead(FaultProfile::kSwarm, 1 + shard * kSwarmSeedsPerShard + i, &seen);
  }
  for (uint64_t i = 0; i < kHeavySeedsPerShard; ++i) {
    RunAndRead(FaultProfile::kHeavy, 1 + shard * kHeavySeedsPerShard + i, &seen);
  }
  std::printf("shard %llu: %llu applies, %llu snapshots, %llu restarts, %llu stops read\n",
              static_cast<unsigned long long>(shard), static_cast<unsigned long long>(seen.applies),
              static_cast<unsigned long long>(seen.snapshots),
              static_cast<unsigned long long>(seen.restarts),
              static_cast<unsigned long long>(seen.stops));
  EXPECT_GT(seen.applies, 0u);
  EXPECT_GT(seen.snapshots, 0u);
  EXPECT_GT(seen.restarts, 0u);
  EXPECT_GT(seen.stops, 0u);
}

INSTANTIATE_TEST_SUITE_P(Shards, TraceOrderSeedsTest, ::testing::Values(0u, 1u, 2u, 3u));

}  // namespace
}  // namespace blixard::sim
