// Host: drives one Blixard node. It wires the pure Raft core (RawNode) and
// the replicated cluster state machine to the world through the Env
// interfaces (core/env.h), and it is the only user of those interfaces, so
// the simulator and the production event loop run exactly this code.
//
// What it does, in the order of the Raft thesis' "Ready" loop (§10.2.1):
//   - ticks the core from a Timer, steps it with messages from Transport;
//   - for each Ready: sends `messages` at once (the leader's appends go out
//     while its own write is in flight), hands snapshot + entries + hard
//     state to LogStore as one write, and only when that write is durable
//     copies it into the core's MemoryStorage, releases
//     `messages_after_persist` (vote grants, append acks) and tells the core
//     (OnPersisted);
//   - applies committed entries to the ClusterStateMachine and answers the
//     clients whose writes they carry — never before apply;
//   - serves reads through ReadIndex once the state machine has applied up
//     to the read index;
//   - takes a snapshot every `snapshot_interval_entries` applied entries and
//     compacts the log, keeping `log_retain_entries` for slow followers;
//   - recovers on Start() from the LogStore: snapshot restored into the
//     state machine, the log replayed from there, never re-applying what the
//     snapshot holds; the hard state (term, vote) is never reset;
//   - runs leader-only controllers that act only by proposing commands:
//     worker liveness from agents' heartbeats, task timeouts, and the log
//     clock (AdvanceTime) so backoffs and grace periods end;
//   - runs this node's agent: registers the node as a worker, starts and
//     stops its tasks and VMs through the Executor, reports what happened.
//
// Where things are (one room per job):
//   host.cc          start-up and recovery, events (tick, packets, work
//                    events), invariants;
//   host_ready.cc    the Ready/durability loop: persist, send, apply,
//                    snapshot;
//   host_clients.cc  client requests: submit, reads, forwarding;
//   controllers.h    LeaderControllers: leader-only loops and log time;
//   agent.h          WorkerAgent: this node as a worker.
//
// Identity and membership. A store records the cluster id and node id it
// belongs to (with the node's first durable write) and a Host refuses a
// store of another cluster or node. A node starts a new cluster only when
// told so (initial_cluster_state kNew), its store is empty and
// `initial_voters` names it; every other node with an empty store is a
// joiner: it never votes nor campaigns until the log or a snapshot shows it
// added as a learner (new members always join as learners), and only then
// records its identity. A joiner that first sees itself as a voter is a
// wiped member coming back under its old id (it could vote twice in a
// term): it stays silent for good and says so. (The first Blixard
// bootstrapped every node as a one-node cluster, and a later fix reset term
// and vote on restart.)
//
// Thread-safety: none. Every method and every Env callback runs on one
// thread. Lifetime: the Env objects and the observer outlive the Host;
// the Host must be destroyed (a crash) before the Env objects are reset.
#ifndef BLIXARD_CORE_HOST_HOST_H_
#define BLIXARD_CORE_HOST_HOST_H_

#include <cstdint>
#include <deque>
#include <functional>
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
#include "core/env.h"
#include "core/host/agent.h"
#include "core/host/controllers.h"
#include "core/host/observer.h"
#include "core/host/snapshot_stream.h"
#include "core/proto/cluster.pb.h"
#include "core/proto/api.pb.h"
#include "core/proto/host.pb.h"
#include "core/proto/raft.pb.h"
#include "core/raft/raw_node.h"
#include "core/raft/storage.h"
#include "core/sm/cluster_state_machine.h"

namespace blixard::host {

// Named bounds on what the Host queues.
inline constexpr size_t kPendingWritesMax = 65536;
inline constexpr size_t kPendingReadsMax = 65536;
inline constexpr size_t kPendingForwardsMax = 65536;
inline constexpr size_t kHostMessageBytesMax = 4 << 20;

// Whether this node is told that the cluster is brand new (etcd's
// --initial-cluster-state). Only consulted when the store is empty.
enum class InitialClusterState : uint8_t { kNew = 0, kExisting = 1 };

// The store nonce of every founder (a store created by the bootstrap of a
// new cluster); a store created empty draws a random one above it. The
// bootstrap records each founder with it (MemberJoined), so a founder that
// comes back with a new store is told apart.
inline constexpr uint64_t kFounderStoreNonce = 1;

struct HostOptions {
  NodeId id;
  // The cluster this node belongs to; recorded in the store and checked at
  // every start. REQUIRES: != 0.
  uint64_t cluster_id = 1;
  // kNew: an empty store bootstraps the cluster from initial_voters (this
  // node must be one). kExisting: an empty store waits to be added.
  InitialClusterState initial_cluster_state = InitialClusterState::kExisting;
  // Voters of a brand-new cluster; used only with kNew and an empty store.
  std::vector<NodeId> initial_voters;

  // Raft.
  int64_t tick_us = 100'000;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  uint64_t max_size_per_msg = 1 << 20;
  size_t max_inflight_msgs = 256;
  uint64_t max_inflight_bytes = 32 << 20;
  uint64_t max_uncommitted_entries_size = 64 << 20;
  // The core's randomness (election timeouts); drawn anew for each process
  // of the node, which also names the process to its agent's leader
  // (WorkerAgentOptions::incarnation).
  uint64_t raft_seed = 0;

  // Snapshots: taken after this many applied entries since the last one;
  // the log keeps this many entries below the snapshot for slow followers.
  uint64_t snapshot_interval_entries = 1000;
  uint64_t log_retain_entries = 200;
  // Snapshots travel to followers as streams of chunks (snapshot_stream.h):
  // chunk size (1 .. kSnapshotChunkBytesMax), chunks in flight, the
  // progress timeout per chunk and the resend interval.
  uint64_t snapshot_chunk_bytes = kSnapshotChunkBytesMax;
  uint64_t snapshot_window_chunks = 4;
  int64_t snapshot_chunk_timeout_us = 10'000'000;
  int64_t snapshot_retransmit_us = 1'000'000;
  // The state digest is reported to the observer every this many applied
  // entries (0: never). Digests serialize the whole state: not free.
  uint64_t digest_interval_entries = 64;

  // Where this node listens for peers and for clients, as the others reach
  // it ("HOST:PORT"): once a member, the node records them in the cluster
  // (MemberAttributes) whenever its record says otherwise. Empty (the
  // simulator): not published.
  std::string advertise_peer_address;
  std::string advertise_client_address;

  // A forwarded request that gets no reply within this long is answered
  // UNKNOWN (commands) or NOT_LEADER (queries).
  int64_t forward_timeout_us = 3'000'000;

  // Agent and controllers.
  // The capacity this node offers as a worker; nullopt: not a worker.
  std::optional<cluster::RegisterWorker> worker;
  int64_t agent_heartbeat_us = 500'000;
  // The agent stops its tasks when no leader acknowledged a heartbeat it
  // sent in this long (WorkerAgent's fence).
  int64_t agent_fence_us = 10'000'000;
  // The leader proposes WorkerLost after this long without a heartbeat.
  int64_t worker_ttl_us = 3'000'000;
  // The leader proposes AdvanceTime when nothing was proposed for this long.
  int64_t advance_time_us = 1'000'000;
  // Slack past a task's timeout before the leader declares it timed out.
  // The leader does so only for a worker silent for longer than its fence
  // can take (WorkerFencedAfterUs): a worker it hears from reports its own
  // timeouts (its Executor kills the task at the timeout).
  uint64_t task_timeout_slack_ms = 5'000;

  ClusterStateMachineOptions state_machine;

  absl::Status Validate() const;

  // How long a worker must have been silent (no heartbeat heard by this
  // leader, or since this leader was elected) before the leader may assume
  // its agent's fence has stopped its tasks: the fence, plus the longest a
  // deposed leader may go on acknowledging heartbeats before check-quorum
  // makes it step down (two randomized election timeouts). Validate checks
  // that a lost worker's tasks stay put at least this long (TTL plus the
  // state machine's offline grace, with a margin for clock drift).
  int64_t WorkerFencedAfterUs() const {
    return agent_fence_us + 4 * static_cast<int64_t>(election_ticks) * tick_us;
  }
};

class Host {
 public:
  using Reply = std::function<void(const api::ClientResponse& response)>;

  // REQUIRES: options.Validate().ok(); env.complete(); logger set.
  // `observer` may be null (NullObserver).
  Host(HostOptions options, Env env, Logger* logger, HostObserver* observer = nullptr);
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Recovers from the LogStore and starts ticking (for a brand-new cluster,
  // once the bootstrap membership is durable). Errors: whatever the store's
  // recovery reads report (DATA_LOSS for a lying log): the node must not
  // run. REQUIRES: called once.
  absl::Status Start();

  // Handles a client request. `reply` runs exactly once, later or right
  // away, on this thread — unless the Host is destroyed first (a crash),
  // in which case the client sees no answer, like a real network.
  void Submit(api::ClientRequest request, Reply reply);

  // Administrative actions, unchecked (definitely-not-applied NOT_LEADER
  // results are reported through the return value). Clients change the
  // membership through Submit (api::MemberChangeRequest), which checks.
  bool ProposeConfChange(const raft::ConfChange& change);
  bool TransferLeader(NodeId to);

  NodeId id() const { return options_.id; }
  // Whether this node's worker agent holds its fence (no leader
  // acknowledged a recent heartbeat: it runs no task). False for a node
  // that is not a worker.
  bool agent_fenced() const;
  bool is_leader() const;
  NodeRole role() const { return role_; }
  NodeId leader() const;
  Term term() const;
  Index commit_index() const;
  Index applied_index() const { return applied_; }
  const ClusterStateMachine& state_machine() const { return *sm_; }
  // Whether the core exists yet (Start() recovered, or the bootstrap write
  // of a new cluster is durable). REQUIRES for raw_node(): booted().
  bool booted() const { return raw_node_ != nullptr; }
  // An empty-store node waiting to be added as a learner (never votes).
  bool joining() const { return joining_; }
  // This node's store is not the one the cluster knows as this member's: a
  // joiner that found itself already a voter, or whose id the cluster
  // recorded with another store (MemberJoined). A wiped member under its
  // old id: it never votes nor campaigns.
  bool wiped_member() const { return wiped_member_; }
  // The store as recorded (or queued to be): its nonce, and whether the
  // cluster confirmed it as this member's. Only a confirmed store votes.
  const StoreIdentity& store_identity() const { return store_identity_; }
  bool may_vote() const { return store_identity_.confirmed && !wiped_member_; }
  // The configuration no longer holds this node (HostObserver::OnRemoved).
  bool removed() const { return removed_; }
  const raft::RawNode& raw_node() const { return *raw_node_; }

  // Checks the Host's own invariants, the core's and the state machine's.
  void CheckInvariants() const;

 private:
  struct PendingPersist {
    uint64_t ready_number;
    bool has_write;
    std::optional<raft::Snapshot> snapshot;
    std::vector<raft::Entry> entries;
    std::optional<raft::HardState> hard_state;
    std::optional<raft::Snapshot> local_snapshot;  // taken by this node
    std::vector<raft::Message> messages_after_persist;
  };
  struct PendingRead {
    cluster::Query query;
    Reply reply;
  };
  struct PendingForward {
    bool is_query;
    MonoMicros deadline;
    Reply reply;
  };
  using RequestKey = std::pair<uint64_t, uint64_t>;  // (client id, sequence)

  // Second half of Start(), once the recovered (or bootstrap) state is
  // durable.
  void Boot(raft::HardState hard_state, std::optional<raft::Snapshot> snapshot,
            std::vector<raft::Entry> entries);

  // Event handlers.
  void OnTick();
  void OnPacket(Packet&& packet);
  void OnHostBytes(NodeId from, const std::string& bytes);
  void OnWorkEvent(const WorkEvent& event);

  // The Ready loop.
  void ProcessReady();
  void HandleReady(raft::Ready ready);
  void SendMessages(std::vector<raft::Message> messages);
  void OnWriteDurable();
  void FinishPersist(PendingPersist persist);
  void ApplyEntries(const std::vector<raft::Entry>& entries);
  void ApplyEntry(const raft::Entry& entry);
  void MaybeSnapshot();
  void ServeReads();
  void FlushReplies();

  // Client path.
  void SubmitCommand(cluster::Command command, Reply reply);
  void SubmitQuery(const cluster::Query& query, Reply reply);
  void SubmitMemberChange(const api::MemberChangeRequest& request, Reply reply);
  void Forward(api::ClientRequest request, Reply reply);
  void FailPending(api::ClientResponse::Status status, absl::string_view why);
  void SweepForwards();
  void SendHostMessage(NodeId to, const HostMessage& message);
  api::ClientResponse NotLeader() const;

  // Membership (host_members.cc): a committed conf change applied and
  // recorded; the member records may have changed; a removed node told
  // (at most once per election timeout); this node learned it was
  // removed; this node's addresses published when its record differs.
  void ApplyConfChangeEntry(const raft::Entry& entry);
  void MembersChanged();
  void TellRemoved(NodeId to);
  void NoteRemoved(Index index, NodeId told_by);
  void MaybePublishAttributes();

  // Joiners: the configuration `conf` now applies on this node (from a
  // conf change or a snapshot).
  void CheckJoined(const raft::ConfState& conf, Index index);
  // The cluster's member record for this node may have changed (a
  // MemberJoined or a snapshot was applied, or the node booted): confirms
  // this store, or finds it is not the member's.
  void CheckMemberRecord();
  // An unconfirmed store asks the cluster to record it (MemberJoined),
  // at most once per election timeout, while it is in the configuration.
  void MaybeProposeJoined();
  // Queues a write of store_identity_ when the store does not hold it yet.
  void PersistIdentity();
  // Snapshot streams: chunks and acks in, chunks and acks out.
  void SendStreamOut(std::vector<StreamOut> out);
  void OnSnapshotChunk(NodeId from, const SnapshotChunk& chunk);
  void OnSnapshotAck(NodeId from, const SnapshotAck& ack);
  // Who this node is, for the identity check at start (nonce aside).
  StoreIdentity identity() const { return StoreIdentity{options_.cluster_id, options_.id}; }

  // Leader controllers and the agent.
  void OnBecameLeader();
  // Stamps log time and proposes a command of this node's own (controllers,
  // not clients); returns whether the core accepted it.
  bool ProposeInternal(cluster::Command command);
  MonoMicros Now() const;

  HostOptions options_;
  Env env_;
  NullObserver null_observer_;
  HostObserver* observer_;
  Logger* logger_;

  raft::MemoryStorage storage_;
  std::unique_ptr<raft::RawNode> raw_node_;
  std::unique_ptr<ClusterStateMachine> sm_;
  raft::ConfState conf_state_;
  bool started_ = false;
  bool in_process_ready_ = false;
  // The store's identity as it is or will be (store_identity_), and as the
  // store holds it counting queued writes (queued_identity_).
  StoreIdentity store_identity_;
  std::optional<StoreIdentity> queued_identity_;
  MonoMicros last_joined_proposal_ = 0;
  bool joined_proposed_ = false;
  bool joining_ = false;
  bool wiped_member_ = false;
  bool removed_ = false;
  MonoMicros last_attributes_proposal_ = 0;
  bool attributes_proposed_ = false;
  // When each removed node was last told so.
  std::map<NodeId, MonoMicros> told_removed_;

  // Raft view, as last reported.
  NodeRole role_ = NodeRole::kFollower;
  Term term_;
  NodeId leader_;
  Index commit_;
  Index applied_;
  Index last_snapshot_index_;
  Index last_digest_index_;

  SnapshotSender snapshot_sender_;
  SnapshotReceiver snapshot_receiver_;
  // The index of the last snapshot from a leader that the core handed over
  // to be made durable (0: none).
  Index last_queued_snapshot_;
  // The last snapshot received, already decoded into a state (validation
  // needs it anyway); installed when the snapshot at that position is
  // durable, instead of decoding it a second time.
  struct RestoredSnapshot {
    Index index;
    Term term;
    std::unique_ptr<ClusterStateMachine> state;
  };
  std::optional<RestoredSnapshot> restored_snapshot_;

  std::deque<PendingPersist> persisting_;
  // Term and vote as last handed to the LogStore, and a newer hard state
  // that differs only in its commit index and is not written yet.
  uint64_t durable_term_ = 0;
  uint64_t durable_vote_ = 0;
  std::optional<raft::HardState> latest_hard_state_;
  size_t writes_in_flight_ = 0;

  std::map<RequestKey, Reply> pending_writes_;
  std::deque<std::pair<Reply, api::ClientResponse>> deferred_replies_;
  uint64_t next_read_id_ = 1;
  std::map<uint64_t, PendingRead> pending_reads_;       // awaiting ReadIndex
  std::multimap<Index, PendingRead> reads_awaiting_apply_;
  uint64_t next_forward_id_ = 1;
  std::map<uint64_t, PendingForward> forwards_;

  LeaderControllers controllers_;
  std::unique_ptr<WorkerAgent> agent_;  // null when this node is not a worker

  // The applied index at which CheckInvariants last ran the state machine's
  // O(state) check, if it ran (a cache, hence mutable in a const method).
  mutable std::optional<Index> sm_checked_at_;
};

}  // namespace blixard::host

#endif  // BLIXARD_CORE_HOST_HOST_H_
