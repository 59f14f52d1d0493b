// The whole simulator, as `blixard sim` runs it: a 5-node cluster of real
// Hosts, Raft cores and state machines under the mixed workload, every
// oracle and CheckInvariants() after every event, 60 virtual seconds per
// run. One iteration is one run; seeds 1, 2, 3, ... in turn, so a long
// measurement averages over seeds.
//
// Figures: `x_realtime` is virtual seconds per wall second (issue #6's
// virtual:wall ratio), `items_per_second` is events per second. Both count
// the whole RunSimulation call (setup, safety phase, liveness phase and the
// linearizability check), as `blixard sim` does.
//
//   bazel run -c opt //sim:simulation_benchmark
#include <cstdint>

#include "benchmark/benchmark.h"
#include "core/base/check.h"
#include "sim/fault_schedule.h"
#include "sim/simulation.h"

namespace blixard::sim {
namespace {

void RunSeeds(benchmark::State& state, FaultProfile faults) {
  uint64_t seed = 0;
  int64_t virtual_us = 0;
  uint64_t events = 0;
  for (auto _ : state) {
    SimulationOptions options;
    options.seed = ++seed;
    options.nodes = 5;
    options.faults = faults;
    options.workload = WorkloadKind::kMixed;
    const SimulationReport report = RunSimulation(options);
    // A failing run measures nothing worth quoting.
    CHECK(report.passed) << "seed " << seed << ": " << report.failure;
    virtual_us += report.virtual_us;
    events += report.events;
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
  state.counters["x_realtime"] = benchmark::Counter(
      static_cast<double>(virtual_us) / 1e6, benchmark::Counter::kIsRate);
  state.counters["seeds"] = static_cast<double>(seed);
}

void BM_SimulationDefaultFaults(benchmark::State& state) {
  RunSeeds(state, FaultProfile::kDefault);
}
BENCHMARK(BM_SimulationDefaultFaults)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SimulationHeavyFaults(benchmark::State& state) {
  RunSeeds(state, FaultProfile::kHeavy);
}
BENCHMARK(BM_SimulationHeavyFaults)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace blixard::sim
