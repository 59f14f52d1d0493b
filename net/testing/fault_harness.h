// FaultHarness: a real N-node cluster (ProcessCluster) whose every peer link
// runs through a FaultNetwork proxy, with the faults of ARCHITECTURE.md
// "Testing the real thing": SIGKILL + restart, SIGSTOP/SIGCONT, partitions
// (majority/minority, one-way, ring, bridge) and a seeded schedule runner
// that applies them for a bounded time and counts what it did. Every fault
// is also written to the run's KvHistory as a sim/TRACE.md `fault` line.
//
// Nodes run with a low --snapshot_interval and --log_retain so that a node
// that was away catches up by snapshot while faults go on.
//
// Test-only. Thread: the test's (the proxies run on the network's thread,
// workload clients on theirs). Every wait is bounded.
#ifndef BLIXARD_NET_TESTING_FAULT_HARNESS_H_
#define BLIXARD_NET_TESTING_FAULT_HARNESS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/base/rng.h"
#include "net/api/client.h"
#include "net/testing/fault_network.h"
#include "net/testing/kv_history.h"
#include "net/testing/process_cluster.h"

namespace blixard::net::testing {

struct FaultHarnessOptions {
  std::string binary;
  std::string base_dir;
  int nodes = 3;
  uint64_t seed = 1;
  uint64_t snapshot_interval = 200;
  uint64_t log_retain = 50;
};

enum class Schedule {
  kKillLeader,         // SIGKILL the leader, restart it later
  kKillAny,            // SIGKILL a random node
  kPause,              // SIGSTOP a random node (the leader half the time), SIGCONT later
  kMajorityMinority,   // isolate a random minority from the majority
  kOneWay,             // a random node cannot send to the others
  kRing,               // each node hears only its ring neighbours (5 nodes)
  kBridge,             // two halves that only a bridge node joins
  kMixed,              // any of the above, drawn each round
  // The soak's: leader kills and majority/minority partitions in turn,
  // with shorter faults and rests (0.5-1.5 s, 0.2-0.6 s), so a 600 s run
  // has well over 100 of each.
  kKillAndPartition,
};
const char* ScheduleName(Schedule schedule);

struct FaultCounts {
  uint64_t rounds = 0;
  uint64_t kills = 0;
  uint64_t restarts = 0;
  uint64_t pauses = 0;
  uint64_t partitions = 0;
  uint64_t heals = 0;
  std::string ToString() const;
};

class FaultHarness {
 public:
  // Creates the cluster and its proxies and starts every node.
  static absl::StatusOr<std::unique_ptr<FaultHarness>> Create(FaultHarnessOptions options,
                                                               KvHistory* history);
  ~FaultHarness();

  ProcessCluster& cluster() { return *cluster_; }
  FaultNetwork& network() { return *network_; }
  int nodes() const { return options_.nodes; }

  // The node that says it leads in the highest term (0: none answered so).
  int Leader();
  void Kill(int id);
  absl::Status Restart(int id);
  void Pause(int id);
  void Resume(int id);
  // Only nodes in the same group can talk. Every node is in one group.
  void Partition(const std::vector<std::set<int>>& groups);
  // `from` cannot send to any of `to`; everything else passes.
  void PartitionOneWay(int from, const std::set<int>& to);
  // Each node can talk only to its ring neighbours (id +- 1, wrapping).
  void Ring();
  // `left` and `right` cannot talk to each other; `bridge` talks to both.
  void Bridge(const std::set<int>& left, const std::set<int>& right, int bridge);
  void HealNetwork();
  // Heals the network, resumes paused nodes and restarts killed ones.
  absl::Status HealAll();

  // Applies `schedule` in rounds for `duration` (fault, hold 1-3 s, undo,
  // pause 0.5-1.5 s), drawing from a seeded Rng.
  absl::StatusOr<FaultCounts> RunSchedule(Schedule schedule, std::chrono::milliseconds duration);

  // Waits (bounded) until every node reports the same applied index and a
  // leader exists; then compares their state digests. OK, or
  // DEADLINE_EXCEEDED (no convergence) / DATA_LOSS (digests differ).
  absl::Status WaitConvergedAndCompareDigests(std::chrono::milliseconds timeout,
                                              uint64_t* applied_index);

  // A client of every node's client endpoint (the test thread's).
  Client& client() { return *client_; }

 private:
  FaultHarness(FaultHarnessOptions options, KvHistory* history)
      : options_(std::move(options)), history_(history), rng_(options_.seed) {}
  void SetReachable(const std::function<bool(int, int)>& can_send);
  std::vector<int> Ids() const;

  const FaultHarnessOptions options_;
  KvHistory* const history_;
  Rng rng_;
  std::unique_ptr<ProcessCluster> cluster_;
  std::unique_ptr<FaultNetwork> network_;
  std::unique_ptr<Client> client_;
  std::set<int> killed_;
  std::set<int> paused_;
  FaultCounts counts_;
};

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_TESTING_FAULT_HARNESS_H_
