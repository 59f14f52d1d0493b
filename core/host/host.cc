#include "core/host/host.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/planted_bug.h"
#include "core/base/rng.h"
#include "core/base/status_macros.h"
#include "core/host/host_internal.h"
#include "core/raft/config.h"

namespace blixard::host {
namespace {

constexpr Timers::TimerId kTickTimer = 1;

// The Raft settings of `options` (storage, logger, seed and applied index
// are the Host's to fill in at boot): one place, so what Validate checks is
// what Boot runs.
raft::Config RaftConfigOf(const HostOptions& options) {
  raft::Config config;
  config.id = options.id;
  config.election_tick = options.election_ticks;
  config.heartbeat_tick = options.heartbeat_ticks;
  config.max_size_per_msg = options.max_size_per_msg;
  config.max_inflight_msgs = options.max_inflight_msgs;
  config.max_inflight_bytes = options.max_inflight_bytes;
  config.max_uncommitted_entries_size = options.max_uncommitted_entries_size;
  config.check_quorum = options.check_quorum;
  config.pre_vote = options.pre_vote;
  return config;
}

}  // namespace

absl::Status HostOptions::Validate() const {
  if (id.is_none()) return absl::InvalidArgumentError("host: id must not be 0");
  if (tick_us <= 0) return absl::InvalidArgumentError("host: tick_us must be > 0");
  if (snapshot_interval_entries == 0) {
    return absl::InvalidArgumentError("host: snapshot_interval_entries must be > 0");
  }
  if (forward_timeout_us <= 0 || agent_heartbeat_us <= 0 ||
      worker_ttl_us <= agent_heartbeat_us || advance_time_us <= 0) {
    return absl::InvalidArgumentError(
        "host: timeouts must be > 0 and worker_ttl_us > agent_heartbeat_us");
  }
  if (agent_fence_us <= agent_heartbeat_us || agent_fence_us > Timers::kDelayMaxUs ||
      worker_ttl_us > Timers::kDelayMaxUs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host: agent_fence_us (", agent_fence_us, ") must be above agent_heartbeat_us (",
        agent_heartbeat_us, ") and, like worker_ttl_us (", worker_ttl_us, "), at most ",
        Timers::kDelayMaxUs));
  }
  if (worker.has_value() && !check_quorum) {
    return absl::InvalidArgumentError(
        "host: a worker node needs check_quorum: its fence trusts that a deposed leader "
        "steps down, and stops acknowledging heartbeats, within two election timeouts");
  }
  // A lost worker's tasks move after the TTL plus the offline grace (in log
  // time, which runs at a leader's clock rate); its fence must have stopped
  // them by then, with 3% to spare for the two clocks' drift.
  const int64_t tasks_stay_us =
      worker_ttl_us +
      static_cast<int64_t>(std::min<uint64_t>(state_machine.offline_grace_ms, uint64_t{1} << 40)) *
          kMicrosPerMilli;
  if (WorkerFencedAfterUs() / 100 * 103 > tasks_stay_us) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host: a cut-off worker's fence (agent_fence_us ", agent_fence_us,
        " + 4 election timeouts = ", WorkerFencedAfterUs(),
        " us, plus 3%) must end before its tasks move (worker_ttl_us + offline_grace_ms = ",
        tasks_stay_us, " us): lower agent_fence_us or raise the grace"));
  }
  if (snapshot_chunk_bytes < 1 || snapshot_chunk_bytes > kSnapshotChunkBytesMax ||
      snapshot_window_chunks < 1 || snapshot_window_chunks > 1024 || snapshot_retransmit_us <= 0 ||
      snapshot_chunk_timeout_us <= snapshot_retransmit_us ||
      snapshot_chunk_timeout_us > Timers::kDelayMaxUs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host: snapshot streams need 1 <= snapshot_chunk_bytes <= ", kSnapshotChunkBytesMax,
        ", 1 <= snapshot_window_chunks <= 1024 and 0 < snapshot_retransmit_us < "
        "snapshot_chunk_timeout_us <= ", Timers::kDelayMaxUs));
  }
  if (cluster_id == 0) return absl::InvalidArgumentError("host: cluster_id must not be 0");
  if (absl::Status raft = raft::ValidateConfig(RaftConfigOf(*this)); !raft.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("host: raft settings: ", raft.message()));
  }
  std::set<NodeId> voters(initial_voters.begin(), initial_voters.end());
  if (voters.size() != initial_voters.size() || voters.count(kNoNode) > 0) {
    return absl::InvalidArgumentError(
        "host: initial_voters must be distinct non-zero ids");
  }
  return state_machine.Validate();
}

namespace {

SnapshotStreamOptions StreamOptions(const HostOptions& options) {
  SnapshotStreamOptions o;
  o.chunk_bytes = options.snapshot_chunk_bytes;
  o.window_chunks = options.snapshot_window_chunks;
  o.chunk_timeout_us = options.snapshot_chunk_timeout_us;
  o.retransmit_us = options.snapshot_retransmit_us;
  return o;
}

// Stream ids of one process: drawn from its seed, so a restarted sender's
// streams are not mistaken for its predecessor's.
uint64_t FirstStreamId(const HostOptions& options) {
  uint64_t state = options.raft_seed ^ 0xbb67ae8584caa73bULL;
  return (SplitMix64(state) >> 16) + 1;
}

LeaderControllersOptions ControllerOptions(const HostOptions& options) {
  LeaderControllersOptions o;
  o.worker_ttl_us = options.worker_ttl_us;
  o.advance_time_us = options.advance_time_us;
  o.task_timeout_slack_ms = options.task_timeout_slack_ms;
  o.worker_fenced_after_us = options.WorkerFencedAfterUs();
  return o;
}

}  // namespace

Host::Host(HostOptions options, Env env, Logger* logger, HostObserver* observer)
    : options_(std::move(options)),
      env_(env),
      observer_(observer != nullptr ? observer : &null_observer_),
      logger_(logger),
      sm_(std::make_unique<ClusterStateMachine>(options_.state_machine)),
      snapshot_sender_(StreamOptions(options_), FirstStreamId(options_)),
      controllers_(ControllerOptions(options_), sm_.get()) {
  CHECK_OK(options_.Validate());
  CHECK(env_.complete()) << "every Env interface is required";
  CHECK(logger_ != nullptr);
  if (options_.worker.has_value()) {
    WorkerAgentOptions agent;
    agent.self = options_.id;
    agent.worker = options_.worker;
    agent.heartbeat_us = options_.agent_heartbeat_us;
    agent.fence_us = options_.agent_fence_us;
    // The core's seed is drawn per process (HostOptions::raft_seed).
    agent.incarnation = options_.raft_seed;
    WorkerAgent::Hooks hooks;
    hooks.send_heartbeat = [this](NodeId leader, const AgentHeartbeat& heartbeat) {
      HostMessage message;
      *message.mutable_heartbeat() = heartbeat;
      SendHostMessage(leader, message);
    };
    hooks.submit = [this](cluster::Command command) {
      api::ClientRequest request;
      *request.mutable_command() = std::move(command);
      request.set_allow_forward(true);
      Submit(std::move(request), [](const api::ClientResponse&) {});
    };
    agent_ = std::make_unique<WorkerAgent>(std::move(agent), env_.executor, logger_, sm_.get(),
                                           std::move(hooks));
  }
}

Host::~Host() = default;

MonoMicros Host::Now() const { return env_.clock->NowMicros(); }

bool Host::agent_fenced() const { return agent_ != nullptr && agent_->fenced(); }

absl::Status Host::Start() {
  CHECK(!started_);
  started_ = true;
  LogStore& store = *env_.log_store;
  ASSIGN_OR_RETURN(raft::HardState hard_state, store.ReadHardState());
  ASSIGN_OR_RETURN(std::optional<raft::Snapshot> snapshot, store.ReadSnapshot());
  ASSIGN_OR_RETURN(Index first, store.FirstIndex());
  ASSIGN_OR_RETURN(Index last, store.LastIndex());
  std::vector<raft::Entry> entries;
  if (last >= first) {
    ASSIGN_OR_RETURN(entries, store.ReadEntries(first, last.Next()));
  }
  ASSIGN_OR_RETURN(std::optional<StoreIdentity> recorded, store.ReadIdentity());
  if (recorded.has_value() && (recorded->cluster_id != options_.cluster_id ||
                               recorded->node_id != options_.id)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the store belongs to ", StoreIdentityString(*recorded), ", but this node is ",
        StoreIdentityString(identity()),
        ": refusing to start on another node's or another cluster's data"));
  }
  queued_identity_ = recorded;
  if (recorded.has_value()) store_identity_ = *recorded;
  const bool empty = !snapshot.has_value() && entries.empty() &&
                     hard_state.term() == 0 && hard_state.vote() == 0 && !recorded.has_value();
  const bool initial_voter =
      std::find(options_.initial_voters.begin(), options_.initial_voters.end(),
                options_.id) != options_.initial_voters.end();
  const bool bootstrap =
      empty && options_.initial_cluster_state == InitialClusterState::kNew;
  if (bootstrap && !initial_voter) {
    return absl::InvalidArgumentError(absl::StrCat(
        "told the cluster is new, but node ", options_.id.value(),
        " is not among the initial voters; a node joining an existing cluster starts with "
        "initial_cluster_state=existing"));
  }
  if (!bootstrap) {
    if (Planted(PlantedBug::kForgetVoteOnRestart)) {
      // PLANTED BUG kForgetVoteOnRestart (core/base/planted_bug.h): the
      // recovered vote is dropped, so this node may vote again in the term
      // it already voted in (Raft Figure 2: votedFor is persistent state).
      hard_state.set_vote(0);
    }
    if (recorded.has_value()) {
      Boot(std::move(hard_state), std::move(snapshot), std::move(entries));
      return absl::OkStatus();
    }
    // A store without an identity: a new store (or one whose first process
    // never got further). It joins: a new nonce, unconfirmed, durable
    // before the node takes part, so that its MemberJoined names a store
    // that exists. Until the cluster confirms it, it never votes.
    joining_ = true;
    uint64_t nonce_state = options_.raft_seed ^ 0x6a09e667f3bcc909ULL ^ options_.id.value();
    store_identity_ = identity();
    store_identity_.store_nonce = std::max<uint64_t>(SplitMix64(nonce_state), kFounderStoreNonce + 1);
    store_identity_.confirmed = false;
    logger_->Info("n", options_.id.value(), " waits to be added to cluster ",
                  absl::Hex(options_.cluster_id, absl::kZeroPad16),
                  " as a learner with store ", absl::Hex(store_identity_.store_nonce, absl::kZeroPad16),
                  "; it does not vote until the cluster records that store as its");
    LogWrite write;
    write.identity = store_identity_;
    queued_identity_ = store_identity_;
    store.Write(std::move(write), [this, hard_state = std::move(hard_state),
                                   snapshot = std::move(snapshot),
                                   entries = std::move(entries)]() mutable {
      Boot(std::move(hard_state), std::move(snapshot), std::move(entries));
    });
    store.PollCompletions();
    return absl::OkStatus();
  }
  // A brand-new cluster. Every initial voter writes the same membership as
  // committed conf-change entries at term 1 (etcd-raft's bootstrap), so the
  // logs agree and a node added later learns the membership by replication.
  // The node takes part only once they are durable: a crash before that
  // leaves an empty store and the same bootstrap again.
  for (NodeId voter : options_.initial_voters) {
    raft::ConfChange change;
    raft::ConfChangeSingle* add = change.add_changes();
    add->set_type(raft::CONF_CHANGE_ADD_NODE);
    add->set_node_id(voter.value());
    raft::Entry entry;
    entry.set_term(1);
    entry.set_index(entries.size() + 1);
    entry.set_type(raft::ENTRY_CONF_CHANGE);
    entry.set_data(change.SerializeAsString());
    entries.push_back(std::move(entry));
  }
  // Then each founder's member record (MemberJoined with the founders'
  // nonce): a founder whose disk is wiped later, and comes back with a new
  // store, finds its id recorded with another store and never votes.
  for (NodeId voter : options_.initial_voters) {
    cluster::Command command;
    command.mutable_member_joined()->set_node_id(voter.value());
    command.mutable_member_joined()->set_store_nonce(kFounderStoreNonce);
    raft::Entry entry;
    entry.set_term(1);
    entry.set_index(entries.size() + 1);
    entry.set_type(raft::ENTRY_NORMAL);
    entry.set_data(command.SerializeAsString());
    entries.push_back(std::move(entry));
  }
  hard_state.set_term(1);
  hard_state.set_commit(entries.size());
  store_identity_ = identity();
  store_identity_.store_nonce = kFounderStoreNonce;
  store_identity_.confirmed = true;
  LogWrite write;
  write.entries = entries;
  write.hard_state = hard_state;
  write.identity = store_identity_;
  queued_identity_ = store_identity_;
  store.Write(std::move(write), [this, hard_state, entries]() mutable {
    Boot(std::move(hard_state), std::nullopt, std::move(entries));
  });
  store.PollCompletions();
  return absl::OkStatus();
}

void Host::Boot(raft::HardState hard_state, std::optional<raft::Snapshot> snapshot,
                std::vector<raft::Entry> entries) {
  Index applied;
  if (snapshot.has_value()) {
    // The snapshot was verified by the store (CRC); one that does not decode
    // is a lying store, and the node must not run on it.
    CHECK_OK(sm_->Restore(snapshot->data()))
        << "restoring the state machine from the snapshot at "
        << snapshot->metadata().index();
    CHECK_OK(storage_.ApplySnapshot(*snapshot));
    conf_state_ = snapshot->metadata().conf_state();
    applied = Index(snapshot->metadata().index());
    last_snapshot_index_ = applied;
  }
  if (!entries.empty()) CHECK_OK(storage_.Append(entries));
  // The commit index on disk may lag (commit-only hard states are written
  // lazily, and a snapshot may be durable before the hard state that
  // committed it): what a snapshot holds is committed.
  if (hard_state.commit() < applied.value()) hard_state.set_commit(applied.value());
  storage_.SetHardState(hard_state);
  durable_term_ = hard_state.term();
  durable_vote_ = hard_state.vote();
  applied_ = applied;
  commit_ = Index(hard_state.commit());
  term_ = Term(hard_state.term());
  observer_->OnBoot(options_.id, term_, NodeId(hard_state.vote()));
  MembersChanged();  // the state a snapshot restored may already say
  if (snapshot.has_value()) {
    observer_->OnSnapshotApplied(options_.id, applied, Term(snapshot->metadata().term()),
                                 observer_->WantsDigests() ? sm_->Digest() : 0);
  }
  observer_->OnRecover(options_.id,
                       snapshot ? Index(snapshot->metadata().index()) : Index(0),
                       snapshot ? Term(snapshot->metadata().term()) : Term(0),
                       entries);
  if (commit_ > applied_) observer_->OnCommit(options_.id, commit_);

  raft::Config config = RaftConfigOf(options_);
  config.storage = &storage_;
  config.logger = logger_;
  // Mixed with the node id: nodes configured with the same seed (the
  // default) must still draw different election timeouts, or they split
  // every vote.
  uint64_t seed_state = options_.raft_seed ^ (options_.id.value() * 0x9e3779b97f4a7c15ULL);
  config.seed = SplitMix64(seed_state);
  config.applied = applied;
  absl::StatusOr<std::unique_ptr<raft::RawNode>> raw_node = raft::RawNode::Create(config);
  // The config was validated with the options and the storage was just
  // loaded from a verified store: a failure here is a bug.
  CHECK_OK(raw_node.status());
  raw_node_ = std::move(*raw_node);

  env_.transport->SetReceiver([this](Packet&& packet) { OnPacket(std::move(packet)); });
  env_.executor->SetCallback([this](const WorkEvent& event) { OnWorkEvent(event); });
  if (agent_ != nullptr) agent_->AdoptSurvivors();
  env_.timers->ArmAfter(kTickTimer, options_.tick_us, [this] { OnTick(); });
  controllers_.OnProposal(Now());
  logger_->Info("n", options_.id.value(), " started: term ", term_.value(),
                " commit ", commit_.value(), " applied ", applied_.value(),
                " entries ", entries.size());
  ProcessReady();
}

bool Host::is_leader() const { return role_ == NodeRole::kLeader; }
NodeId Host::leader() const { return leader_; }
Term Host::term() const { return term_; }
Index Host::commit_index() const { return commit_; }

// ---------------------------------------------------------------------------
// Events.

void Host::OnTick() {
  env_.timers->ArmAfter(kTickTimer, options_.tick_us, [this] { OnTick(); });
  // A joiner (or a wiped member) never campaigns: an election timeout
  // would make it vote for itself.
  if (may_vote()) raw_node_->Tick();
  MaybeProposeJoined();
  MaybePublishAttributes();
  if (is_leader()) {
    // A removed node that was down when its removal applied, or a learner
    // (it never campaigns), may never call us: the leader keeps telling
    // every removed member (TellRemoved sends at most once per election
    // timeout per node).
    for (const auto& [id, member] : sm_->members()) {
      if (member.role() == cluster::MEMBER_ROLE_REMOVED) TellRemoved(NodeId(id));
    }
  }
  SweepForwards();
  {
    const MonoMicros now = Now();
    std::vector<StreamOut> out;
    for (NodeId failed : snapshot_sender_.Tick(now, &out)) {
      logger_->Warning("n", options_.id.value(), " snapshot stream to n", failed.value(),
                       " made no progress for ", options_.snapshot_chunk_timeout_us / kMicrosPerMilli,
                       " ms: reported failed");
      raw_node_->ReportSnapshot(failed, false);
    }
    SendStreamOut(std::move(out));
    snapshot_receiver_.Expire(now, 2 * options_.snapshot_chunk_timeout_us);
  }
  if (agent_ != nullptr) {
    if (!agent_->caught_up() && !leader_.is_none() && applied_ >= commit_) agent_->OnCaughtUp();
    agent_->Tick(Now(), leader_);
  }
  if (is_leader()) {
    controllers_.Run(Now(), [this](cluster::Command command) {
      return ProposeInternal(std::move(command));
    });
  }
  ProcessReady();
}

void Host::OnPacket(Packet&& packet) {
  // A node the configuration no longer holds may not know it (the leader
  // stops replicating to it once its removal commits): tell it.
  if (raw_node_ != nullptr) TellRemoved(packet.from);
  if (packet.kind == Packet::Kind::kBytes) {
    OnHostBytes(packet.from, packet.bytes);
    ProcessReady();
    return;
  }
  // The network is untrusted: the core refuses what it cannot accept.
  if (packet.raft.to() != options_.id.value() ||
      packet.raft.from() != packet.from.value()) {
    logger_->Warning("n", options_.id.value(), " dropped a raft message from n",
                     packet.from.value(), " addressed from ", packet.raft.from(),
                     " to ", packet.raft.to());
    return;
  }
  const raft::MessageType type = packet.raft.type();
  if (type == raft::MSG_SNAPSHOT) {
    logger_->Warning("n", options_.id.value(), " dropped a MSG_SNAPSHOT from n",
                     packet.from.value(), ": snapshots arrive as chunk streams only");
    return;
  }
  if (!may_vote() &&
      (type == raft::MSG_VOTE || type == raft::MSG_PRE_VOTE || type == raft::MSG_TIMEOUT_NOW)) {
    logger_->Debug("n", options_.id.value(), " does not vote while ",
                   wiped_member_ ? "a wiped member" : "its store is unconfirmed", ": dropped ",
                   raft::MessageType_Name(type), " from n", packet.from.value());
    return;
  }
  const absl::Status status = raw_node_->Step(std::move(packet.raft));
  if (!status.ok()) {
    logger_->Debug("n", options_.id.value(), " refused a message from n",
                   packet.from.value(), ": ", status.ToString());
  }
  ProcessReady();
}

void Host::OnHostBytes(NodeId from, const std::string& bytes) {
  HostMessage message;
  if (bytes.size() > kHostMessageBytesMax || !message.ParseFromString(bytes)) {
    logger_->Warning("n", options_.id.value(), " dropped ", bytes.size(),
                     " malformed host bytes from n", from.value());
    return;
  }
  switch (message.body_case()) {
    case HostMessage::kForward: {
      const uint64_t forward_id = message.forward().forward_id();
      api::ClientRequest request = message.forward().request();
      request.set_allow_forward(false);  // one hop only: no forwarding loops
      Submit(std::move(request), [this, from, forward_id](const api::ClientResponse& r) {
        HostMessage reply;
        reply.mutable_forward_reply()->set_forward_id(forward_id);
        *reply.mutable_forward_reply()->mutable_response() = r;
        SendHostMessage(from, reply);
      });
      return;
    }
    case HostMessage::kForwardReply: {
      auto it = forwards_.find(message.forward_reply().forward_id());
      if (it == forwards_.end()) return;  // timed out already, or a duplicate
      Reply reply = std::move(it->second.reply);
      forwards_.erase(it);
      reply(message.forward_reply().response());
      return;
    }
    case HostMessage::kHeartbeat: {
      if (!is_leader()) return;
      const AgentHeartbeat& heartbeat = message.heartbeat();
      if (heartbeat.node_id() != from.value()) {
        logger_->Warning("n", options_.id.value(), " dropped a heartbeat for n",
                         heartbeat.node_id(), " sent by n", from.value());
        return;
      }
      controllers_.OnHeartbeat(heartbeat.node_id(), Now());
      HostMessage ack;
      ack.mutable_heartbeat_ack()->set_sent_us(heartbeat.sent_us());
      ack.mutable_heartbeat_ack()->set_incarnation(heartbeat.incarnation());
      SendHostMessage(from, ack);
      return;
    }
    case HostMessage::kHeartbeatAck:
      if (agent_ != nullptr) agent_->OnHeartbeatAck(message.heartbeat_ack());
      return;
    case HostMessage::kSnapshotChunk:
      OnSnapshotChunk(from, message.snapshot_chunk());
      return;
    case HostMessage::kSnapshotAck:
      OnSnapshotAck(from, message.snapshot_ack());
      return;
    case HostMessage::kMemberRemoved:
      if (from != options_.id) NoteRemoved(Index(message.member_removed().index()), from);
      return;
    case HostMessage::BODY_NOT_SET:
      logger_->Warning("n", options_.id.value(), " dropped an empty host message from n",
                       from.value());
      return;
  }
}

void Host::SendStreamOut(std::vector<StreamOut> out) {
  for (const StreamOut& item : out) {
    // Chunks take the bulk lane: a snapshot's megabytes must never queue in
    // front of heartbeats and appends (head-of-line blocking). Acks stay on
    // the control lane: they are small, and the sender's window moves only
    // when they arrive, so they must not wait behind bulk traffic of their
    // own. A chunk the transport drops (a full bulk queue) is resent by the
    // stream like one lost on the wire; a chunk never goes to this node
    // (Raft sends no snapshot to itself; the transport CHECKs).
    if (item.message.has_snapshot_chunk()) {
      env_.transport->SendBulk(item.to, item.message.SerializeAsString());
    } else {
      SendHostMessage(item.to, item.message);
    }
  }
}

void Host::OnSnapshotChunk(NodeId from, const SnapshotChunk& chunk) {
  if (from == options_.id) return;
  std::vector<StreamOut> out;
  std::optional<raft::Message> complete =
      snapshot_receiver_.OnChunk(options_.id, from, chunk, Now(), &out);
  SendStreamOut(std::move(out));
  if (!complete.has_value()) return;
  // The whole snapshot is here: the core takes it like any message. It is
  // queued to be made durable (the final ack waits for that) or not used.
  const Index index(complete->snapshot().metadata().index());
  logger_->Info("n", options_.id.value(), " received the snapshot at index ", index.value(),
                " (", complete->snapshot().data().size(), " bytes) from n", from.value());
  // A snapshot that does not decode into a valid state (a corrupted
  // transfer, a buggy peer) must never reach the core: once durable it
  // would be restored at every start, and fail every time. Checked on a
  // scratch state machine, which becomes the real one's state once the
  // snapshot is durable (FinishPersist), so it is decoded only once.
  auto scratch = std::make_unique<ClusterStateMachine>(options_.state_machine);
  if (const absl::Status valid = scratch->Restore(complete->snapshot().data()); !valid.ok()) {
    logger_->Error("n", options_.id.value(), " refused the snapshot at index ", index.value(),
                   " from n", from.value(), ": ", valid.ToString());
    out.clear();
    snapshot_receiver_.OnStepped(from, /*queued=*/false, &out);
    SendStreamOut(std::move(out));
    return;
  }
  restored_snapshot_ = RestoredSnapshot{index, Term(complete->snapshot().metadata().term()),
                                        std::move(scratch)};
  const absl::Status status = raw_node_->Step(std::move(*complete));
  if (!status.ok()) {
    logger_->Debug("n", options_.id.value(), " refused a snapshot from n", from.value(), ": ",
                   status.ToString());
  }
  ProcessReady();
  out.clear();
  const bool queued = status.ok() && last_queued_snapshot_ == index;
  if (!queued) restored_snapshot_.reset();  // the core did not take it
  snapshot_receiver_.OnStepped(from, queued, &out);
  SendStreamOut(std::move(out));
}

void Host::OnSnapshotAck(NodeId from, const SnapshotAck& ack) {
  std::vector<StreamOut> out;
  const SnapshotSender::Verdict verdict = snapshot_sender_.OnAck(from, ack, Now(), &out);
  SendStreamOut(std::move(out));
  if (verdict == SnapshotSender::Verdict::kPending || !is_leader()) return;
  if (verdict == SnapshotSender::Verdict::kFailed) {
    logger_->Info("n", options_.id.value(), " snapshot stream to n", from.value(),
                  " ended unused: ", ack.error());
  }
  // Only now, with the follower's snapshot durable: etcd-raft's
  // ReportSnapshot lets the leader go on replicating from it.
  raw_node_->ReportSnapshot(from, verdict == SnapshotSender::Verdict::kSucceeded);
}

void Host::SendHostMessage(NodeId to, const HostMessage& message) {
  if (to == options_.id) {
    OnHostBytes(to, message.SerializeAsString());
    return;
  }
  env_.transport->SendBytes(to, message.SerializeAsString());
}

void Host::CheckJoined(const raft::ConfState& conf, Index index) {
  if (!joining_) return;
  const auto has = [&](const google::protobuf::RepeatedField<uint64_t>& ids) {
    return internal::Contains(ids, options_.id);
  };
  if (has(conf.voters()) || has(conf.voters_outgoing())) {
    // New members join as learners; one that is a voter before it was ever
    // a learner here is a member whose disk was wiped (it may have voted in
    // a term it no longer remembers).
    joining_ = false;
    wiped_member_ = true;
    logger_->Error("n", options_.id.value(), " started with an empty store but is already a voter ",
                   "at index ", index.value(), ": its data was lost. It will never vote; remove "
                   "member ", options_.id.value(), " and add this machine under a new id");
    return;
  }
  if (has(conf.learners()) || has(conf.learners_next())) {
    joining_ = false;
    logger_->Info("n", options_.id.value(), " was added as a learner at index ", index.value());
  }
}

void Host::CheckMemberRecord() {
  const cluster::MemberRecord* record = sm_->FindMember(options_.id.value());
  if (record != nullptr && record->role() == cluster::MEMBER_ROLE_REMOVED) {
    NoteRemoved(Index(record->changed_index()), options_.id);
  }
  // No record, or one from a conf change that no store has claimed yet.
  if (record == nullptr || record->store_nonce() == 0 || wiped_member_) return;
  if (record->store_nonce() == store_identity_.store_nonce) {
    if (store_identity_.confirmed) return;
    store_identity_.confirmed = true;
    logger_->Info("n", options_.id.value(), " store ",
                  absl::Hex(store_identity_.store_nonce, absl::kZeroPad16),
                  " is confirmed as member ", options_.id.value(), "'s (index ",
                  record->joined_index(), "); it may vote");
    PersistIdentity();
    return;
  }
  // A store from before nonces is the member's own: no later store of this
  // id can have been recorded while it ran.
  if (store_identity_.store_nonce == 0) return;
  wiped_member_ = true;
  logger_->Error("n", options_.id.value(), " is not the store the cluster knows as member ",
                 options_.id.value(), " (that one, recorded at index ", record->joined_index(),
                 ", was ", absl::Hex(record->store_nonce(), absl::kZeroPad16), "; this is ",
                 absl::Hex(store_identity_.store_nonce, absl::kZeroPad16),
                 "): its data was lost. It will never vote; remove member ", options_.id.value(),
                 " and add this machine under a new id");
}

void Host::MaybeProposeJoined() {
  const cluster::MemberRecord* record = sm_->FindMember(options_.id.value());
  if (store_identity_.confirmed || wiped_member_ || leader_.is_none() ||
      (record != nullptr && record->store_nonce() != 0)) {
    return;
  }
  const auto has = [&](const google::protobuf::RepeatedField<uint64_t>& ids) {
    return internal::Contains(ids, options_.id);
  };
  if (!has(conf_state_.voters()) && !has(conf_state_.learners()) &&
      !has(conf_state_.voters_outgoing()) && !has(conf_state_.learners_next())) {
    return;  // not added yet
  }
  const MonoMicros now = Now();
  if (joined_proposed_ &&
      now - last_joined_proposal_ < options_.tick_us * options_.election_ticks) {
    return;
  }
  joined_proposed_ = true;
  last_joined_proposal_ = now;
  api::ClientRequest request;
  cluster::MemberJoined* joined = request.mutable_command()->mutable_member_joined();
  joined->set_node_id(options_.id.value());
  joined->set_store_nonce(store_identity_.store_nonce);
  request.set_allow_forward(true);
  Submit(std::move(request), [](const api::ClientResponse&) {});  // resent until applied
}

void Host::PersistIdentity() {
  if (queued_identity_ == store_identity_) return;
  LogWrite write;
  write.identity = store_identity_;
  queued_identity_ = store_identity_;
  PendingPersist persist;
  persist.ready_number = 0;
  persist.has_write = true;
  ++writes_in_flight_;
  persisting_.push_back(std::move(persist));
  env_.log_store->Write(std::move(write), [this] { OnWriteDurable(); });
}

void Host::OnWorkEvent(const WorkEvent& event) {
  if (agent_ != nullptr) agent_->OnWorkEvent(event, Now(), leader_);
  ProcessReady();
}

void Host::OnBecameLeader() {
  controllers_.OnBecameLeader(Now());
  logger_->Info("n", options_.id.value(), " became leader in term ", term_.value(),
                "; log time continues at ", controllers_.LogTimeMs(Now()), " ms");
}

bool Host::ProposeInternal(cluster::Command command) {
  command.set_log_time_ms(controllers_.LogTimeMs(Now()));
  return raw_node_->Propose(command.SerializeAsString()) == raft::ProposalResult::kAccepted;
}

void Host::CheckInvariants() const {
  CHECK(started_);
  if (raw_node_ == nullptr) return;  // still writing the bootstrap
  raw_node_->CheckInvariants();
  storage_.CheckInvariants();
  CHECK_LE(applied_, commit_) << "applied past the commit index";
  CHECK_LE(writes_in_flight_, persisting_.size());
  CHECK_LE(pending_writes_.size(), kPendingWritesMax);
  CHECK_LE(forwards_.size(), kPendingForwardsMax);
  CHECK_LE(pending_reads_.size() + reads_awaiting_apply_.size(), kPendingReadsMax);
  controllers_.CheckInvariants();
  if (agent_ != nullptr) agent_->CheckInvariants();
  snapshot_sender_.CheckInvariants();
  snapshot_receiver_.CheckInvariants();
  // O(state): where expensive checks are on, and only when an apply or a
  // snapshot changed the state since the last check (this runs after every
  // simulated event).
  if (kExpensiveChecks && sm_checked_at_ != applied_) {
    sm_->CheckInvariants();
    sm_checked_at_ = applied_;
  }
}

}  // namespace blixard::host