// Simulation: one seeded run of a whole Blixard cluster in one process —
// the real Raft core, the real cluster state machine and the real Host on
// simulated clocks, timers, network, disks and executors — with faults
// injected from the seed, every safety property checked after every event,
// a linearizability check of the clients' KV history at the end, and a
// JSON-lines trace whose hash identifies the run.
//
//   SimulationOptions options;
//   options.seed = 42;
//   SimulationReport report = RunSimulation(options);
//   if (!report.passed) { /* report.failure says what and when */ }
//
// Same options (seed included) and same binary => the same events in the
// same order and a byte-identical trace.
#ifndef BLIXARD_SIM_SIMULATION_H_
#define BLIXARD_SIM_SIMULATION_H_

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sim/checker/linearizability.h"
#include "sim/fault_schedule.h"
#include "sim/workload.h"

namespace blixard::sim {

inline constexpr int kSimNodesMax = 9;

struct SimulationOptions {
  uint64_t seed = 1;
  int nodes = 5;
  int64_t duration_us = 60'000'000;  // the safety phase, in virtual time
  FaultProfile faults = FaultProfile::kDefault;
  // An explicit schedule to run instead of one generated from the seed and
  // `faults` (replays, shrinking, fuzzing).
  std::optional<FaultSchedule> schedule;
  WorkloadKind workload = WorkloadKind::kMixed;
  // After the safety phase every fault is healed and every node restarted;
  // each client operation in flight must then finish within this bound.
  int64_t liveness_us = 30'000'000;
  // JSON lines (sim/TRACE.md); null: no trace file (the hash is still kept).
  std::ostream* trace = nullptr;
  // Node logs with virtual time; null: discarded.
  std::ostream* log = nullptr;
  // The run drawn as one HTML file (sim/timeline.h); null: not drawn.
  std::ostream* timeline = nullptr;

  absl::Status Validate() const;
};

struct SimulationReport {
  bool passed = true;
  std::string failure;  // the first violation: property, time, node, detail

  uint64_t seed = 0;
  int nodes = 0;
  int64_t virtual_us = 0;
  uint64_t events = 0;
  uint64_t messages_sent = 0;       // packets the network accepted
  uint64_t messages_delivered = 0;
  uint64_t disk_writes = 0;         // durable writes completed, all nodes
  uint64_t elections = 0;       // campaigns started (candidate transitions)
  uint64_t leader_changes = 0;  // distinct (term, leader) pairs
  uint64_t entries_committed = 0;
  WorkloadCounts clients;
  std::map<std::string, uint64_t> faults;  // injected, by kind
  uint64_t checks = 0;                     // oracle evaluations
  LinearizabilityResult linearizability;
  uint64_t trace_hash = 0;
};

SimulationReport RunSimulation(const SimulationOptions& options);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIMULATION_H_
