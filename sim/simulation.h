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
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/coverage_mark.h"
#include "core/base/planted_bug.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"
#include "sim/checker/linearizability.h"
#include "sim/fault_schedule.h"
#include "sim/swarm.h"
#include "sim/workload.h"

namespace blixard::sim {

inline constexpr int kSimNodesMax = 9;
static_assert(kSimNodesMax == kSwarmNodesMax, "swarm node ids must all exist");

// What an extra oracle (SimulationOptions::extra_oracle) sees after each
// event.
struct SimulationProbe {
  int64_t now_us = 0;
  // Faults applied so far, by kind name ("crash", "partition", ...).
  const std::map<std::string, uint64_t>* faults_applied = nullptr;
  // Client operations invoked so far, in invoke order.
  const std::vector<ClientOp>* ops_invoked = nullptr;
};

// A property an extra oracle found broken.
struct OracleFailure {
  std::string property;  // an identifier, e.g. "test_oracle"
  std::string detail;
};

struct SimulationOptions {
  uint64_t seed = 1;
  int nodes = 5;  // initial voters, ids 1..nodes (swarm: swarm->nodes)
  int64_t duration_us = 60'000'000;  // the safety phase, in virtual time
  FaultProfile faults = FaultProfile::kDefault;
  // An explicit schedule to run instead of one generated from the seed and
  // `faults` (replays, shrinking, fuzzing).
  std::optional<FaultSchedule> schedule;
  // Explicit client operations to issue instead of drawing them (replays,
  // shrinking): see WorkloadOptions::ops. An empty list means no operations.
  std::optional<std::vector<ClientOp>> ops;
  WorkloadKind workload = WorkloadKind::kMixed;
  // faults == kSwarm: the drawn world (cluster size, spares, Raft timing and
  // batching, network, fault mix, workload). When set it decides those
  // parts of the run and `nodes` and `workload` above are ignored; when
  // unset, RunSimulation draws it from the seed (ResolveSwarm). Together
  // with `schedule`, an options object then states a run completely.
  std::optional<SwarmParams> swarm;
  // After the safety phase every fault is healed and every node restarted;
  // within this bound there must then be a leader, every client operation
  // in flight must finish, and every live member must have applied the same
  // index with the same state digest.
  int64_t liveness_us = 30'000'000;
  // Every node's Host takes a snapshot after this many applied entries and
  // keeps log_retain_entries below it (HostOptions); small values make
  // lagging nodes catch up by snapshot.
  uint64_t snapshot_interval_entries = 500;
  uint64_t log_retain_entries = 100;
  // Membership churn during the safety phase: every 1-5 s of virtual time
  // the leader is asked to demote a voter to learner (keeping at least two
  // voters) or to promote the learner back, so conf changes race elections,
  // crashes and partitions. Off by default (it changes every seed's run);
  // swarm mode (issue 7) is meant to subsume it.
  bool membership_changes = false;
  // JSON lines (sim/TRACE.md); null: no trace file (the hash is still kept).
  std::ostream* trace = nullptr;
  // Reads the run's own trace as it is written with the independent reader
  // of sim/checker/trace_order.h (per-node apply order across snapshots,
  // stops, crashes and restarts; time never going back) and fails the run
  // ("trace_order") at the first line out of order. Works with or without
  // `trace`; costs a parse of every line.
  bool check_trace_order = false;
  // Node logs with virtual time; null: discarded.
  std::ostream* log = nullptr;
  // The run drawn as one HTML file (sim/timeline.h); null: not drawn.
  std::ostream* timeline = nullptr;
  // Tests only: one more oracle, asked after every event (both phases); a
  // returned failure ends the run like any other violation. It lets a test
  // plant a "bug" that depends on the faults and operations of the run, to
  // exercise replay and shrinking end to end without a real bug.
  std::function<std::optional<OracleFailure>(const SimulationProbe&)> extra_oracle;

  // INVALID_ARGUMENT naming the bad option (swarm params without
  // faults=swarm, a bad swarm, schedule or ops, out-of-range sizes).
  absl::Status Validate() const;
  // The clients this run starts: the swarm's, or the default clients with
  // `workload`, issuing `ops` when given.
  WorkloadOptions ClientOptions() const;
};

// For faults == kSwarm without `swarm`: draws it from the seed's swarm
// stream (SwarmStream(seed)) and copies its `nodes` and `workload` into the
// options, so the returned options print and replay the whole run. Any
// other options come back unchanged.
SimulationOptions ResolveSwarm(SimulationOptions options);

struct SimulationReport {
  // False only for a violation (an oracle, liveness, linearizability).
  bool passed = true;
  std::string failure;  // the first violation: property, time, node, detail
  // The violated property as an identifier ("election_safety",
  // "linearizability", "liveness", "scheduler_invariants", ...; empty when
  // passed): two runs "fail the same way" when these are equal.
  std::string violation_property;
  int64_t violation_us = 0;  // virtual time of the violation (0 when passed)
  // The run made explicit: the faults it scheduled (given or generated) and
  // the client operations it invoked. Given back in SimulationOptions with
  // the same seed they replay the run (the shrinker's starting point).
  FaultSchedule schedule;
  std::vector<ClientOp> ops;
  // The liveness phase could not finish, and the fault model says it never
  // could: a majority of the voters (incoming or outgoing) lost their data
  // (their stores said DATA_LOSS at the last start after every fault was
  // healed). A node down for any other reason was restarted and is not
  // excused. Not a violation (passed stays true); a verdict of its own.
  bool recovery_impossible = false;
  std::string recovery_detail;

  uint64_t seed = 0;
  int nodes = 0;   // initial voters
  int spares = 0;  // node ids beyond them, for membership changes
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
  // Membership changes proposed through a leader, and those skipped (no
  // leader, a change pending, or pointless in the leader's configuration).
  uint64_t membership_proposed = 0;
  uint64_t membership_skipped = 0;
  LinearizabilityResult linearizability;
  uint64_t trace_hash = 0;
  // Coverage marks (core/base/coverage_mark.h) hit during this run, by mark;
  // the registry is reset when the run starts.
  CoverageMarkCounts coverage_marks = {};
  // The bug planted in this process when the run started (kNone normally).
  PlantedBug planted_bug = PlantedBug::kNone;
};

// "election safety" -> "election_safety": the identifier form of a checker's
// property name.
std::string PropertyId(absl::string_view property);

// The test behind the recovery-impossible verdict: whether `config`'s
// voters (incoming and, when joint, outgoing) still have a majority of nodes
// that can run, when the nodes in `refused` can never start again (their
// stores said DATA_LOSS). Returns why not — the voters,
// the lost ones and the quorum needed — or nullopt when a quorum can run.
std::optional<std::string> QuorumCannotRun(const raft::ConfState& config,
                                           const std::set<NodeId>& refused);

// Runs one simulation. REQUIRES: options.Validate().ok() (after
// ResolveSwarm, which this calls). Resets the process-global coverage marks
// at the start and reports the run's hits, so runs must not overlap (one at
// a time per process; a sweep forks workers).
SimulationReport RunSimulation(const SimulationOptions& options);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIMULATION_H_
