// A test cluster: RawNodes over MemoryStorage joined by an in-memory
// network, with a Host loop that follows the RawNode contract exactly
// (send `messages`, queue the write, make it durable later, then release
// `messages_after_persist` and call OnPersisted; apply committed entries at
// once). Writes can be left pending to model slow disks, and a crash drops
// them (unsynced data is lost), so tests exercise asynchronous storage.
//
// Each node's "state machine" is a rolling hash of the applied entries plus
// the list of applied entries; snapshots carry "index:hash", so the
// SafetyChecker can compare every node's applied prefix with every other's
// even across snapshots and restarts.
//
// Test-only. Deterministic: no clocks, no threads, ordered containers.
#ifndef BLIXARD_CORE_RAFT_TESTING_CLUSTER_H_
#define BLIXARD_CORE_RAFT_TESTING_CLUSTER_H_

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/base/logger.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"
#include "core/raft/raw_node.h"
#include "core/raft/storage.h"

namespace blixard::raft::testing {

struct ClusterOptions {
  int election_tick = 10;
  int heartbeat_tick = 1;
  bool pre_vote = false;
  bool check_quorum = false;
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  uint64_t max_size_per_msg = 1 << 20;
  uint64_t max_committed_size_per_ready = 0;
  uint64_t max_uncommitted_entries_size = 0;
  size_t max_inflight_msgs = 256;
  uint64_t max_inflight_bytes = 0;
  bool disable_proposal_forwarding = false;
  bool step_down_on_removal = true;
  // Run CheckInvariants() after every input to a node.
  bool check_invariants = true;
  uint64_t seed = 1;
};

struct TestNode {
  NodeId id;
  MemoryStorage storage;
  std::unique_ptr<RawNode> raw;
  // Readys handed out whose writes are not durable yet, oldest first.
  std::deque<Ready> pending_writes;
  // The state machine: applied entries since its base (snapshot) index.
  Index base_index;
  uint64_t base_hash = 0;
  std::vector<Entry> applied;
  std::vector<uint64_t> applied_hashes;  // hash after each applied entry
  std::map<uint64_t, ConfState> conf_history;  // applied index -> conf state
  ConfState conf_state;
  std::vector<ReadState> read_states;
  int restarts = 0;
  bool down = false;

  Index applied_index() const { return base_index + applied.size(); }
  uint64_t applied_hash() const {
    return applied_hashes.empty() ? base_hash : applied_hashes.back();
  }
};

uint64_t HashEntry(uint64_t prev, const Entry& e);

class Cluster {
 public:
  Cluster(ClusterOptions options, Logger* logger);

  // Adds a node. `voters`/`learners` bootstrap its storage (empty for a node
  // that joins later and learns the config from the leader).
  // `log_terms` pre-fills its stored log (entry i+1 has term log_terms[i])
  // and `term` its stored term, as if recovered from disk.
  void AddNode(uint64_t id, const std::vector<uint64_t>& voters,
               const std::vector<uint64_t>& learners = {},
               const std::vector<uint64_t>& log_terms = {}, uint64_t term = 0);
  // Adds nodes 1..n, all voters.
  void AddVoters(size_t n);

  TestNode& node(uint64_t id);
  RawNode& raw(uint64_t id) { return *node(id).raw; }
  std::vector<uint64_t> ids() const;
  bool has_node(uint64_t id) const { return nodes_.count(id) > 0; }
  const ClusterOptions& options() const { return options_; }

  // --- Host loop pieces.
  // GetReady if HasReady: sends messages, applies committed entries, queues
  // the write. Returns false when there was nothing ready.
  bool TakeReady(uint64_t id, Ready* out = nullptr);
  // Makes the oldest pending write durable and completes it.
  bool PersistOne(uint64_t id);
  void PersistAll(uint64_t id);
  // TakeReady + PersistAll, repeated while the node has a Ready.
  bool ProcessReady(uint64_t id);

  // --- Network.
  std::vector<Message>& in_flight() { return in_flight_; }
  // Queues a message, unless its link is cut or its target is down.
  void Send(Message m);
  // Discards in_flight()[i] (a lost message; a lost snapshot is reported
  // to its sender as failed, as a Host would).
  void Drop(size_t i);
  // Steps in_flight()[i] into its target and removes it.
  absl::Status DeliverAt(size_t i);
  // Delivers every queued message addressed to `id` (in order); returns the
  // number delivered. `drop` messages are discarded instead.
  size_t DeliverTo(uint64_t id, const std::set<size_t>& drop = {});
  size_t DeliverAll();
  // Process readies and deliver messages until nothing changes.
  void Stabilize(size_t max_rounds = 10000);

  void Tick(uint64_t id);
  // Ticks until the node campaigns (or a bound of 2x election ticks).
  void TickElection(uint64_t id);
  void TickHeartbeat(uint64_t id);

  // Cuts links between the groups (both directions).
  void Partition(const std::vector<std::vector<uint64_t>>& groups);
  void Isolate(uint64_t id);
  void Cut(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void Heal() { cut_.clear(); }
  bool LinkCut(uint64_t from, uint64_t to) const { return cut_.count({from, to}) > 0; }

  // Drops the node's unpersisted writes, its in-memory state and queued
  // messages addressed to it; the node stays down until Restart.
  void Crash(uint64_t id);
  void Restart(uint64_t id);
  // Snapshots the node's state machine at `index` (<= applied) and compacts
  // its storage up to it.
  absl::Status Compact(uint64_t id, Index index);

  // Conf-change helper.
  static ConfChange MakeConfChange(const std::string& spec,
                                   ConfChangeTransition transition);

  // Checks node invariants (when enabled).
  void CheckNode(uint64_t id);

 private:
  void StartNode(TestNode& n);
  void Apply(TestNode& n, const Entry& e);
  void ReportSnapshotOutcome(const Message& m, bool ok);

  ClusterOptions options_;
  Logger* logger_;
  std::map<uint64_t, std::unique_ptr<TestNode>> nodes_;
  std::vector<Message> in_flight_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
};

// Raft's safety properties, checked across the cluster as it runs (paper
// 5.2, 5.3, 5.4). Records what was ever observed, so a violation is caught
// even if it is later overwritten.
class SafetyChecker {
 public:
  // Returns a description of the first violation, or "" when all hold.
  std::string Check(Cluster& cluster);

 private:
  std::map<uint64_t, uint64_t> leader_of_term_;   // election safety
  struct Committed {
    uint64_t term;
    std::string data;
    EntryType type;
    uint64_t observed_term;  // a term at which it was known committed
  };
  std::map<uint64_t, Committed> committed_;       // index -> entry
  std::map<uint64_t, uint64_t> applied_hash_;     // index -> state hash
  std::map<uint64_t, std::pair<int, uint64_t>> commit_checked_;  // id -> (restarts, index)
};

}  // namespace blixard::raft::testing

#endif  // BLIXARD_CORE_RAFT_TESTING_CLUSTER_H_
