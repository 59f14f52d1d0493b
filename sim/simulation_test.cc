#include "sim/simulation.h"

#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

SimulationOptions Options(uint64_t seed, FaultProfile faults, int64_t seconds) {
  SimulationOptions options;
  options.seed = seed;
  options.faults = faults;
  options.duration_us = seconds * 1'000'000;
  return options;
}

// Same seed, same binary => byte-identical trace (and so the same hash).
TEST(SimulationTest, SameSeedGivesTheSameTrace) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::ostringstream first_trace, second_trace;
    SimulationOptions options = Options(seed, FaultProfile::kHeavy, 8);
    options.trace = &first_trace;
    const SimulationReport first = RunSimulation(options);
    options.trace = &second_trace;
    const SimulationReport second = RunSimulation(options);
    ASSERT_TRUE(first.passed) << "seed " << seed << ": " << first.failure;
    EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << seed;
    EXPECT_EQ(first.events, second.events) << "seed " << seed;
    ASSERT_EQ(first_trace.str(), second_trace.str()) << "seed " << seed;
  }
}

TEST(SimulationTest, DifferentSeedsTakeDifferentPaths) {
  const SimulationReport a = RunSimulation(Options(1, FaultProfile::kDefault, 5));
  const SimulationReport b = RunSimulation(Options(2, FaultProfile::kDefault, 5));
  EXPECT_NE(a.trace_hash, b.trace_hash);
}

// A short healthy run does real work: a leader, commits, applied client
// operations, and a clean linearizability verdict.
TEST(SimulationTest, FaultFreeRunMakesProgress) {
  const SimulationReport report = RunSimulation(Options(7, FaultProfile::kNone, 10));
  ASSERT_TRUE(report.passed) << report.failure;
  EXPECT_GE(report.leader_changes, 1u);
  EXPECT_GT(report.entries_committed, 50u);
  EXPECT_GT(report.clients.ok, 50u);
  EXPECT_EQ(report.clients.unknown, 0u);
  EXPECT_EQ(report.linearizability.verdict,
            LinearizabilityResult::Verdict::kLinearizable);
  EXPECT_GT(report.linearizability.operations_checked, 20u);
  EXPECT_GT(report.checks, report.events);
}

// Heavy faults across seeds: every seed passes every oracle, and over the
// set crashes, restarts, partitions and loss were really injected.
TEST(SimulationTest, HeavyFaultSeedsPass) {
  std::map<std::string, uint64_t> faults;
  uint64_t ok = 0;
  for (uint64_t seed = 100; seed < 112; ++seed) {
    const SimulationReport report = RunSimulation(Options(seed, FaultProfile::kHeavy, 20));
    ASSERT_TRUE(report.passed) << "seed " << seed << ": " << report.failure;
    for (const auto& [kind, count] : report.faults) faults[kind] += count;
    ok += report.clients.ok;
  }
  EXPECT_GT(faults["crash"], 0u);
  EXPECT_GT(faults["restart"], 0u);
  EXPECT_GT(faults["partition"], 0u);
  EXPECT_GT(faults["loss"], 0u);
  EXPECT_GT(ok, 100u);
}

TEST(SimulationTest, TraceHasTheDocumentedShape) {
  std::ostringstream trace;
  SimulationOptions options = Options(3, FaultProfile::kHeavy, 5);
  options.trace = &trace;
  const SimulationReport report = RunSimulation(options);
  const std::string text = trace.str();
  EXPECT_THAT(text, StartsWith("{\"type\":\"header\",\"seed\":3,\"nodes\":5"));
  EXPECT_THAT(text, HasSubstr("\"type\":\"role\""));
  EXPECT_THAT(text, HasSubstr("\"type\":\"apply\""));
  EXPECT_THAT(text, HasSubstr("\"type\":\"invoke\""));
  EXPECT_THAT(text, HasSubstr("\"type\":\"complete\""));
  const std::string last = text.substr(text.rfind("{\"type\":\"result\""));
  EXPECT_THAT(last, HasSubstr(report.passed ? "\"status\":\"pass\"" : "\"status\":\"fail\""));
  EXPECT_THAT(last, HasSubstr("trace_hash"));
}

TEST(SimulationTest, BadOptionsAreRefused) {
  SimulationOptions options;
  options.nodes = 0;
  EXPECT_FALSE(options.Validate().ok());
  options.nodes = kSimNodesMax + 1;
  EXPECT_FALSE(options.Validate().ok());
  options.nodes = 3;
  options.duration_us = 0;
  EXPECT_FALSE(options.Validate().ok());
  EXPECT_FALSE(ParseFaultProfile("loud").ok());
  EXPECT_FALSE(ParseWorkloadKind("bulk").ok());
}

}  // namespace
}  // namespace blixard::sim
