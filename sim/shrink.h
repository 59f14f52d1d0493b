// Shrinking a failing simulation to a small run that fails the same way.
//
// A failing run is first made explicit (its recorded FaultSchedule and
// client operations, SimulationReport::schedule / ::ops); then, while the
// same property is still violated (SimulationReport::violation_property),
// the shrinker
//
//   - cuts the safety phase to just after the violation,
//   - drops faults (ddmin: Zeller and Hildebrandt, "Simplifying and
//     Isolating Failure-Inducing Input", TSE 2002),
//   - shortens fault windows (moves a heal / unclog / restart / resume
//     halfway towards the fault it ends, then the opening fault halfway
//     towards its end, repeatedly),
//   - drops the highest node ids, with the faults and operations naming them,
//   - drops client operations (ddmin),
//
// and repeats the passes until none makes progress or the run budget is
// spent. Every candidate is a whole simulation run; a candidate "fails the
// same way" when it is not passed and its violation_property equals the
// original's. Faults that no longer make sense after a drop (a restart of a
// node that never crashed) are no-ops by the FaultSchedule contract, so
// every candidate is a valid run.
//
//   ShrinkResult result = Shrink(failing_options, ShrinkOptions());
//   if (result.reproduced) WriteRegressionScript(result.shrunk, ...);
//
// Deterministic: candidates are tried in a fixed order and each run is
// deterministic, so the same input and budget give the same result.
// Single-threaded; `ShrinkOptions::run` is called synchronously.
#ifndef BLIXARD_SIM_SHRINK_H_
#define BLIXARD_SIM_SHRINK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/simulation.h"

namespace blixard::sim {

inline constexpr int kShrinkRunsDefault = 1000;

struct ShrinkOptions {
  // Budget: simulation runs, the first (original) run and its replay
  // included. When spent, Shrink returns the smallest failing run so far.
  int runs_max = kShrinkRunsDefault;
  // Runs one candidate; null: RunSimulation. Tests substitute a fake to
  // test the search itself quickly.
  std::function<SimulationReport(const SimulationOptions&)> run;
  // Optional: one line per accepted reduction, for a person watching.
  std::function<void(const std::string&)> progress;
};

// The dimensions the shrinker reduces.
struct ShrinkSizes {
  int nodes = 0;
  int64_t duration_us = 0;
  size_t faults = 0;
  size_t ops = 0;
  std::string ToString() const;  // "5 nodes, 60s, 57 faults, 1186 ops"
};

struct ShrinkResult {
  bool failed = false;      // the original run violated a property
  bool reproduced = false;  // its explicit replay violated the same one
  std::string property;     // that property (violation_property)
  // Both explicit (schedule and ops set); trace/log/timeline streams null;
  // extra_oracle as given.
  SimulationOptions original;
  SimulationOptions shrunk;
  SimulationReport original_report;
  SimulationReport shrunk_report;  // of `shrunk`: fails with `property`
  ShrinkSizes before;
  ShrinkSizes after;
  int runs = 0;                   // simulation runs made, all included
  bool budget_exhausted = false;  // stopped by runs_max, maybe not minimal
};

// Runs `failing` and, if it fails, shrinks it. When it passes, the result
// has failed == false (and the report); when its explicit replay does not
// fail the same way (a determinism bug), reproduced == false and shrunk ==
// original. `failing` may or may not carry an explicit schedule and ops.
// REQUIRES: failing.Validate().ok(); options.runs_max >= 2.
ShrinkResult Shrink(const SimulationOptions& failing, const ShrinkOptions& options);

// ddmin over the indices [0, n): returns a subset (ascending indices) on
// which `fails` holds and from which removing any one index makes it not
// hold (1-minimal), provided `fails` holds on all of [0, n) and nothing
// stops it early. Tries the empty set first. Stops early, returning the
// smallest failing subset found so far, once `stop()` returns true.
std::vector<size_t> DdMin(size_t n,
                          const std::function<bool(const std::vector<size_t>&)>& fails,
                          const std::function<bool()>& stop);

// The nodes a run has: its voters, and in a swarm run also its spares.
int NodeCount(const SimulationOptions& options);

// `options` (explicit: schedule and ops set) with one node fewer: the
// highest id goes (in a swarm run a spare while there is one); it is removed
// from every fault (a fault left without the nodes its kind needs, or
// bridged by that node, is dropped) and operations naming it
// (set_worker_status) are dropped. REQUIRES: NodeCount(options) > 1.

SimulationOptions WithoutHighestNode(const SimulationOptions& options);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SHRINK_H_
