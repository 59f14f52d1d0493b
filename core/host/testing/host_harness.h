// Hosts on scripted Envs (scripted_env.h), for the Host's unit tests: one
// TestNode is a Host with its own scripted Env, crashable and restartable
// over the same store; a TestCluster wires several through one
// ScriptedNetwork and offers the "just run it" loops tests use to reach the
// state they then drive step by step (Settle, AdvanceTo, ElectLeader).
//
// Test-only. Single-threaded; nothing happens unless a method is called.
#ifndef BLIXARD_CORE_HOST_TESTING_HOST_HARNESS_H_
#define BLIXARD_CORE_HOST_TESTING_HOST_HARNESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/logger.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/host/host.h"
#include "core/proto/host.pb.h"
#include "core/host/observer.h"
#include "core/host/testing/scripted_env.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"
#include "core/proto/raft.pb.h"

namespace blixard::host::testing {

// The Host's tick in these tests, and the options every test starts from:
// elections within 10..20 ticks, no snapshots unless a test asks.
inline constexpr int64_t kTestTickUs = 100'000;
// Bound on the settle/advance loops (rounds of "complete every write,
// deliver every packet"), so a Host that never settles fails the test.
inline constexpr size_t kSettleRoundsMax = 10'000;

HostOptions TestOptions(NodeId id, std::vector<NodeId> voters);

// Records what the Host reports, for tests that check order and counts.
class RecordingObserver final : public HostObserver {
 public:
  void OnRole(NodeId, NodeRole, Term, NodeId) override {}
  void OnAppend(NodeId, const std::vector<raft::Entry>&) override {}
  void OnSnapshot(NodeId, Index, Term, bool) override {}
  bool WantsDigests() const override { return true; }
  void OnSnapshotApplied(NodeId, Index index, Term, uint64_t digest) override {
    snapshots_applied.emplace_back(index, digest);
  }
  void OnBoot(NodeId, Term term, NodeId vote) override { boots.emplace_back(term, vote); }
  void OnRecover(NodeId, Index, Term, const std::vector<raft::Entry>&) override {}
  void OnCommit(NodeId, Index) override {}
  void OnApply(NodeId, const raft::Entry& entry) override {
    applied.push_back(Index(entry.index()));
  }
  void OnStateApplied(NodeId, Index, const cluster::Command&, const ClusterStateMachine&) override {
  }
  void OnDigest(NodeId, Index, uint64_t) override {}
  void OnAcknowledge(NodeId, Index index, Term) override { acknowledged.push_back(index); }
  void OnRemoved(NodeId, Index index) override { removed.push_back(index); }

  std::vector<Index> removed;  // every OnRemoved
  std::vector<Index> applied;  // every entry index applied, in order
  std::vector<Index> acknowledged;
  std::vector<std::pair<Index, uint64_t>> snapshots_applied;
  std::vector<std::pair<Term, NodeId>> boots;
};

// A Host over its own scripted Env.
class TestNode {
 public:
  TestNode(HostOptions options, ScriptedNetwork* network);
  TestNode(const TestNode&) = delete;
  TestNode& operator=(const TestNode&) = delete;

  // Builds a Host over the Env and starts it. REQUIRES: no Host running.
  // Returns what Start() returned.
  absl::Status Start();
  // Destroys the Host and does to the Env what a crash does (pending
  // writes lost, timers and callbacks gone).
  void Crash();

  Host& host() { return *host_; }
  bool running() const { return host_ != nullptr; }
  NodeId id() const { return options_.id; }
  HostOptions& options() { return options_; }
  ScriptedEnv& env() { return env_; }
  ScriptedLogStore& store() { return env_.store(); }
  ScriptedExecutor& executor() { return env_.executor(); }
  // The observer of the current Host (a new one per Start).
  RecordingObserver& observer() { return *observer_; }
  // While set, the cluster's Settle leaves this node's writes pending (the
  // test completes them through store()).
  bool hold_writes() const { return hold_writes_; }
  void set_hold_writes(bool hold) { hold_writes_ = hold; }

 private:
  HostOptions options_;
  uint64_t starts_ = 0;  // processes started so far (each draws its own seed)
  bool hold_writes_ = false;
  ScriptedEnv env_;
  NullLogger logger_;
  std::unique_ptr<RecordingObserver> observer_;
  std::unique_ptr<Host> host_;
};

// Several TestNodes on one network, with clocks that move together.
class TestCluster {
 public:
  // One node per id, all voters of a new cluster; `adjust` may change each
  // node's options before it is built.
  explicit TestCluster(std::vector<NodeId> ids,
                       const std::function<void(HostOptions&)>& adjust = nullptr);

  ScriptedNetwork& network() { return network_; }
  TestNode& node(NodeId id);
  Host& host(NodeId id) { return node(id).host(); }
  std::vector<NodeId> ids() const;

  // Starts every node and completes the bootstrap writes.
  void StartAll();
  // Repeats rounds of "complete every pending write on every running node,
  // deliver every packet in flight" until nothing is left, then checks every
  // running Host's invariants. Packets matching
  // `hold` stay in flight (untouched); packets matching `drop` are dropped.
  void Settle(const PacketPredicate& hold = nullptr, const PacketPredicate& drop = nullptr);
  // Moves every node's clock to `to`: timers fire in deadline order (all
  // clocks move to each deadline; ties go to the lower node id), and the
  // cluster settles after each (with `hold` and `drop` as in Settle).
  void AdvanceTo(MonoMicros to, const PacketPredicate& hold = nullptr,
                 const PacketPredicate& drop = nullptr);
  void AdvanceBy(int64_t delta_us, const PacketPredicate& hold = nullptr,
                 const PacketPredicate& drop = nullptr);
  MonoMicros now() const { return now_; }
  // Advances tick by tick until some node leads and every running node
  // knows it; returns the leader. CHECK-fails if none within `within_us`.
  NodeId ElectLeader(int64_t within_us = 30 * 1000 * 1000);

 private:
  ScriptedNetwork network_;
  std::map<NodeId, std::unique_ptr<TestNode>> nodes_;
  MonoMicros now_ = 0;
};

// Ticks the cluster (pre-votes run) until a candidate asks for real votes,
// at most 100 ticks, and returns those requests, held in flight (empty when
// no candidate asked).
std::vector<const SentPacket*> HoldVoteRequests(TestCluster& cluster);

// Client requests and the replies they get.
api::ClientRequest PutRequest(const std::string& key, const std::string& value,
                              uint64_t client_id = 0, uint64_t sequence = 0);
api::ClientRequest GetRequest(const std::string& key);
api::ClientRequest CommandRequest(cluster::Command command, uint64_t client_id = 0,
                                  uint64_t sequence = 0);

// Collects replies; `count` tells how many arrived (a Host must answer
// each request exactly once).
struct ReplySlot {
  int count = 0;
  api::ClientResponse response;
  Host::Reply Callback();
};

// Submits `request` to `node`, settles the cluster and returns the reply.
// CHECKs that it was answered exactly once.
api::ClientResponse SubmitAndSettle(TestCluster& cluster, NodeId node,
                                    api::ClientRequest request);

// A Host packet carrying `message`, as node `from` would send it to `to`.
Packet HostPacket(NodeId from, NodeId to, const HostMessage& message);

// Packet predicates.
PacketPredicate RaftMessage(raft::MessageType type, NodeId from = kNoNode, NodeId to = kNoNode);
PacketPredicate AnyPacket(NodeId from = kNoNode, NodeId to = kNoNode);
PacketPredicate HostBytes(NodeId from = kNoNode, NodeId to = kNoNode);
PacketPredicate Involving(NodeId node);

// The commands in every entry a store was ever asked to write, in write
// order (an entry rewritten after a truncation appears twice).
std::vector<cluster::Command> CommandsWritten(const ScriptedLogStore& store);
// The commands in the durable log (entries after the durable snapshot).
std::vector<cluster::Command> DurableCommands(const ScriptedLogStore& store);
size_t CountCommands(const std::vector<cluster::Command>& commands, cluster::Command::OpCase op);

}  // namespace blixard::host::testing

#endif  // BLIXARD_CORE_HOST_TESTING_HOST_HARNESS_H_
