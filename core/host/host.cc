#include "core/host/host.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/planted_bug.h"
#include "core/base/rng.h"
#include "core/base/status_macros.h"

namespace blixard::host {
namespace {

constexpr Timers::TimerId kTickTimer = 1;

NodeRole RoleOf(raft::Role role, bool learner) {
  switch (role) {
    case raft::Role::kLeader:
      return NodeRole::kLeader;
    case raft::Role::kCandidate:
      return NodeRole::kCandidate;
    case raft::Role::kPreCandidate:
      return NodeRole::kPreCandidate;
    case raft::Role::kFollower:
      return learner ? NodeRole::kLearner : NodeRole::kFollower;
  }
  return NodeRole::kFollower;
}

bool Contains(const google::protobuf::RepeatedField<uint64_t>& ids, NodeId id) {
  return std::find(ids.begin(), ids.end(), id.value()) != ids.end();
}

api::ClientResponse Response(api::ClientResponse::Status status, absl::string_view error) {
  api::ClientResponse response;
  response.set_status(status);
  response.set_error(std::string(error));
  return response;
}

// Read ids travel as the ReadIndex context: 8 bytes, little-endian.
std::string EncodeReadId(uint64_t id) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(id >> (8 * i));
  return out;
}
std::optional<uint64_t> DecodeReadId(const std::string& context) {
  if (context.size() != 8) return std::nullopt;
  uint64_t id = 0;
  for (int i = 7; i >= 0; --i) {
    id = (id << 8) | static_cast<uint8_t>(context[static_cast<size_t>(i)]);
  }
  return id;
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
  std::set<NodeId> voters(initial_voters.begin(), initial_voters.end());
  if (voters.size() != initial_voters.size() || voters.count(kNoNode) > 0) {
    return absl::InvalidArgumentError(
        "host: initial_voters must be distinct non-zero ids");
  }
  return state_machine.Validate();
}

Host::Host(HostOptions options, Env env, Logger* logger, HostObserver* observer)
    : options_(std::move(options)),
      env_(env),
      observer_(observer != nullptr ? observer : &null_observer_),
      logger_(logger) {
  CHECK_OK(options_.Validate());
  CHECK(env_.complete()) << "every Env interface is required";
  CHECK(logger_ != nullptr);
  sm_ = std::make_unique<ClusterStateMachine>(options_.state_machine);
}

Host::~Host() = default;

MonoMicros Host::Now() const { return env_.clock->NowMicros(); }

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
  const bool empty = !snapshot.has_value() && entries.empty() &&
                     hard_state.term() == 0 && hard_state.vote() == 0;
  const bool initial_voter =
      std::find(options_.initial_voters.begin(), options_.initial_voters.end(),
                options_.id) != options_.initial_voters.end();
  if (!empty || !initial_voter) {
    if (Planted(PlantedBug::kForgetVoteOnRestart)) {
      // PLANTED BUG kForgetVoteOnRestart (core/base/planted_bug.h): the
      // recovered vote is dropped, so this node may vote again in the term
      // it already voted in (Raft Figure 2: votedFor is persistent state).
      hard_state.set_vote(0);
    }
    Boot(std::move(hard_state), std::move(snapshot), std::move(entries));
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
  hard_state.set_term(1);
  hard_state.set_commit(entries.size());
  LogWrite write;
  write.entries = entries;
  write.hard_state = hard_state;
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
  if (snapshot.has_value()) {
    observer_->OnSnapshotApplied(options_.id, applied, Term(snapshot->metadata().term()),
                                 sm_->Digest());
  }
  observer_->OnRecover(options_.id,
                       snapshot ? Index(snapshot->metadata().index()) : Index(0),
                       snapshot ? Term(snapshot->metadata().term()) : Term(0),
                       entries);
  if (commit_ > applied_) observer_->OnCommit(options_.id, commit_);

  raft::Config config;
  config.id = options_.id;
  config.election_tick = options_.election_ticks;
  config.heartbeat_tick = options_.heartbeat_ticks;
  config.storage = &storage_;
  config.logger = logger_;
  config.seed = options_.raft_seed;
  config.applied = applied;
  config.max_size_per_msg = options_.max_size_per_msg;
  config.max_inflight_msgs = options_.max_inflight_msgs;
  config.max_inflight_bytes = options_.max_inflight_bytes;
  config.max_uncommitted_entries_size = options_.max_uncommitted_entries_size;
  config.check_quorum = options_.check_quorum;
  config.pre_vote = options_.pre_vote;
  absl::StatusOr<std::unique_ptr<raft::RawNode>> raw_node = raft::RawNode::Create(config);
  // The config was validated with the options and the storage was just
  // loaded from a verified store: a failure here is a bug.
  CHECK_OK(raw_node.status());
  raw_node_ = std::move(*raw_node);

  env_.transport->SetReceiver([this](Packet&& packet) { OnPacket(std::move(packet)); });
  env_.executor->SetCallback([this](const WorkEvent& event) { OnWorkEvent(event); });
  env_.timers->ArmAfter(kTickTimer, options_.tick_us, [this] { OnTick(); });
  last_proposal_ = Now();
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
  raw_node_->Tick();
  SweepForwards();
  RunAgent();
  if (is_leader()) RunControllers();
  ProcessReady();
}

void Host::OnPacket(Packet&& packet) {
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
    case HostMessage::kHeartbeat:
      if (is_leader()) last_heartbeat_[message.heartbeat().node_id()] = Now();
      return;
    case HostMessage::BODY_NOT_SET:
      logger_->Warning("n", options_.id.value(), " dropped an empty host message from n",
                       from.value());
      return;
  }
}

void Host::SendHostMessage(NodeId to, const HostMessage& message) {
  if (to == options_.id) {
    OnHostBytes(to, message.SerializeAsString());
    return;
  }
  env_.transport->SendBytes(to, message.SerializeAsString());
}

// ---------------------------------------------------------------------------
// The Ready loop.

void Host::ProcessReady() {
  // Callbacks run from inside the loop (a durable write, a reply that
  // submits) must not re-enter it; the outer loop picks up their work.
  if (in_process_ready_ || raw_node_ == nullptr) return;
  in_process_ready_ = true;
  env_.log_store->PollCompletions();
  while (raw_node_->HasReady()) HandleReady(raw_node_->GetReady());
  in_process_ready_ = false;
}

void Host::HandleReady(raft::Ready ready) {
  if (ready.soft_state.has_value() || ready.hard_state.has_value()) {
    const raft::BasicStatus status = raw_node_->GetBasicStatus();
    const NodeRole role =
        RoleOf(status.role, Contains(conf_state_.learners(), options_.id));
    const bool became_leader = role == NodeRole::kLeader && role_ != NodeRole::kLeader;
    const bool lost_leadership = role != NodeRole::kLeader && role_ == NodeRole::kLeader;
    if (role != role_ || status.term != term_ || status.leader != leader_) {
      role_ = role;
      term_ = status.term;
      leader_ = status.leader;
      observer_->OnRole(options_.id, role_, term_, leader_);
    }
    if (became_leader) OnBecameLeader();
    if (lost_leadership) {
      FailPending(api::ClientResponse::STATUS_UNKNOWN, "leadership lost");
    }
  }
  if (ready.snapshot.has_value()) {
    observer_->OnSnapshot(options_.id, Index(ready.snapshot->metadata().index()),
                          Term(ready.snapshot->metadata().term()), true);
  }
  if (!ready.entries.empty()) observer_->OnAppend(options_.id, ready.entries);
  if (ready.hard_state.has_value() && Index(ready.hard_state->commit()) > commit_) {
    commit_ = Index(ready.hard_state->commit());
    observer_->OnCommit(options_.id, commit_);
  }

  // Committed entries are durable locally; the core counts them applied at
  // the next call into it, so they are applied before anything else here.
  ApplyEntries(ready.committed_entries);
  for (raft::ReadState& read : ready.read_states) {
    const std::optional<uint64_t> id = DecodeReadId(read.request_context);
    if (!id) continue;
    auto it = pending_reads_.find(*id);
    if (it == pending_reads_.end()) continue;
    reads_awaiting_apply_.emplace(read.index, std::move(it->second));
    pending_reads_.erase(it);
  }
  ServeReads();

  SendMessages(std::move(ready.messages));

  PendingPersist persist;
  persist.ready_number = ready.number;
  persist.snapshot = std::move(ready.snapshot);
  persist.entries = std::move(ready.entries);
  persist.hard_state = std::move(ready.hard_state);
  persist.messages_after_persist = std::move(ready.messages_after_persist);
  // A hard state that only moves the commit index need not reach the disk
  // now: term and vote are what must be durable before a vote or an ack
  // (Raft Figure 2), while a commit index that lags on disk is only learned
  // again from the leader after a restart. It rides along with the next
  // write instead, which saves a disk write per committed entry on every
  // follower.
  const bool commit_only =
      persist.hard_state.has_value() && persist.hard_state->term() == durable_term_ &&
      persist.hard_state->vote() == durable_vote_;
  persist.has_write = persist.snapshot.has_value() || !persist.entries.empty() ||
                      (persist.hard_state.has_value() && !commit_only);
  if (persist.has_write) {
    LogWrite write;
    write.snapshot = persist.snapshot;
    write.entries = persist.entries;
    if (persist.hard_state.has_value()) {
      write.hard_state = persist.hard_state;
    } else if (latest_hard_state_.has_value()) {
      write.hard_state = latest_hard_state_;  // carries a commit not yet written
    }
    if (write.hard_state.has_value()) {
      durable_term_ = write.hard_state->term();
      durable_vote_ = write.hard_state->vote();
      latest_hard_state_.reset();
    }
    ++writes_in_flight_;
    persisting_.push_back(std::move(persist));
    env_.log_store->Write(std::move(write), [this] { OnWriteDurable(); });
  } else {
    if (persist.hard_state.has_value()) latest_hard_state_ = persist.hard_state;
    if (persisting_.empty()) {
      FinishPersist(std::move(persist));
    } else {
      // Messages that depend on earlier writes wait for them (FIFO).
      persisting_.push_back(std::move(persist));
    }
  }
  MaybeSnapshot();
  FlushReplies();
}

void Host::SendMessages(std::vector<raft::Message> messages) {
  for (raft::Message& message : messages) {
    const NodeId to(message.to());
    const bool snapshot = message.type() == raft::MSG_SNAPSHOT;
    const Transport::SendResult result =
        env_.transport->Send(to, std::move(message));
    if (result != Transport::SendResult::kQueued) {
      raw_node_->ReportUnreachable(to);
      if (snapshot) raw_node_->ReportSnapshot(to, false);
    } else if (snapshot) {
      // The transport takes the whole snapshot in one packet; the follower
      // answers with its own progress, so report success now.
      raw_node_->ReportSnapshot(to, true);
    }
  }
}

void Host::OnWriteDurable() {
  CHECK_GT(writes_in_flight_, 0u);
  CHECK(!persisting_.empty() && persisting_.front().has_write);
  --writes_in_flight_;
  FinishPersist(std::move(persisting_.front()));
  persisting_.pop_front();
  while (!persisting_.empty() && !persisting_.front().has_write) {
    FinishPersist(std::move(persisting_.front()));
    persisting_.pop_front();
  }
  ProcessReady();
}

void Host::FinishPersist(PendingPersist persist) {
  // Durable now: the core may read it from storage and act on it.
  if (persist.snapshot.has_value()) {
    const raft::Snapshot& snapshot = *persist.snapshot;
    const absl::Status restored = sm_->Restore(snapshot.data());
    agent_dirty_ = true;
    // A snapshot from the leader that does not decode is a bug in a peer
    // or a corrupted transfer; running on with half a state would be worse.
    CHECK_OK(restored) << "installing snapshot at " << snapshot.metadata().index();
    CHECK_OK(storage_.ApplySnapshot(snapshot));
    conf_state_ = snapshot.metadata().conf_state();
    applied_ = Index(snapshot.metadata().index());
    last_snapshot_index_ = applied_;
    observer_->OnSnapshotApplied(options_.id, applied_, Term(snapshot.metadata().term()),
                                 sm_->Digest());
  }
  if (!persist.entries.empty()) CHECK_OK(storage_.Append(std::move(persist.entries)));
  if (persist.hard_state.has_value()) storage_.SetHardState(*persist.hard_state);
  if (persist.local_snapshot.has_value()) {
    // Our own snapshot: the core serves it to followers that fell behind the
    // compacted log, and keeps log_retain_entries below it for the others.
    const raft::SnapshotMetadata& meta = persist.local_snapshot->metadata();
    const Index index(meta.index());
    if (index > Index(storage_.FirstIndex().value() - 1)) {
      CHECK_OK(storage_.CreateSnapshot(index, &meta.conf_state(),
                                       persist.local_snapshot->data())
                   .status());
      const Index compact_to(index.value() > options_.log_retain_entries
                                 ? index.value() - options_.log_retain_entries
                                 : 0);
      if (compact_to >= storage_.FirstIndex()) CHECK_OK(storage_.Compact(compact_to));
      observer_->OnSnapshot(options_.id, Index(storage_.FirstIndex().value() - 1),
                            *storage_.TermAt(Index(storage_.FirstIndex().value() - 1)),
                            false);
    }
  }
  SendMessages(std::move(persist.messages_after_persist));
  if (persist.ready_number != 0) CHECK_OK(raw_node_->OnPersisted(persist.ready_number));
}

void Host::ApplyEntries(const std::vector<raft::Entry>& entries) {
  for (const raft::Entry& entry : entries) ApplyEntry(entry);
}

void Host::ApplyEntry(const raft::Entry& entry) {
  const Index index(entry.index());
  if (index <= applied_) return;  // covered by an installed snapshot
  CHECK_EQ(index, applied_.Next()) << "committed entries must apply in order";
  applied_ = index;
  agent_dirty_ = true;
  observer_->OnApply(options_.id, entry);
  if (entry.type() == raft::ENTRY_CONF_CHANGE) {
    raft::ConfChange change;
    CHECK(change.ParseFromString(entry.data()))
        << "committed conf change at " << index << " does not decode";
    conf_state_ = raw_node_->ApplyConfChange(change);
  } else if (!entry.data().empty()) {
    cluster::Command command;
    // Only this node's Host proposes entries, after validating them, so a
    // committed command that does not decode means corruption.
    CHECK(command.ParseFromString(entry.data()))
        << "committed entry at " << index << " does not decode";
    cluster::Result result = sm_->Apply(index, command);
    observer_->OnStateApplied(options_.id, index, command, *sm_);
    const RequestKey key(command.request_id().client_id(),
                         command.request_id().sequence());
    auto it = pending_writes_.find(key);
    if (it != pending_writes_.end() && key.first != 0) {
      api::ClientResponse response;
      response.set_status(api::ClientResponse::STATUS_OK);
      *response.mutable_result() = std::move(result);
      response.set_index(index.value());
      response.set_term(entry.term());
      observer_->OnAcknowledge(options_.id, index, Term(entry.term()));
      deferred_replies_.emplace_back(std::move(it->second), std::move(response));
      pending_writes_.erase(it);
    }
  }
  if (options_.digest_interval_entries != 0 &&
      index.value() % options_.digest_interval_entries == 0) {
    observer_->OnDigest(options_.id, index, sm_->Digest());
  }
}

void Host::MaybeSnapshot() {
  if (applied_ < last_snapshot_index_ ||
      applied_.Since(last_snapshot_index_) < options_.snapshot_interval_entries) {
    return;
  }
  absl::StatusOr<Term> term = storage_.TermAt(applied_);
  if (!term.ok()) return;  // applied entries not yet mirrored; next time
  raft::Snapshot snapshot;
  snapshot.set_data(sm_->Snapshot());
  *snapshot.mutable_metadata()->mutable_conf_state() = conf_state_;
  snapshot.mutable_metadata()->set_index(applied_.value());
  snapshot.mutable_metadata()->set_term(term->value());
  last_snapshot_index_ = applied_;
  // The store drops its log up to the snapshot (recovery needs no more);
  // the core's storage keeps log_retain_entries below it (FinishPersist).
  LogWrite write;
  write.snapshot = snapshot;
  PendingPersist persist;
  persist.ready_number = 0;
  persist.has_write = true;
  persist.local_snapshot = std::move(snapshot);
  ++writes_in_flight_;
  persisting_.push_back(std::move(persist));
  env_.log_store->Write(std::move(write), [this] { OnWriteDurable(); });
}

void Host::ServeReads() {
  while (!reads_awaiting_apply_.empty() &&
         reads_awaiting_apply_.begin()->first <= applied_) {
    PendingRead read = std::move(reads_awaiting_apply_.begin()->second);
    reads_awaiting_apply_.erase(reads_awaiting_apply_.begin());
    api::ClientResponse response;
    response.set_status(api::ClientResponse::STATUS_OK);
    *response.mutable_query_result() = sm_->Query(read.query);
    response.set_index(applied_.value());
    deferred_replies_.emplace_back(std::move(read.reply), std::move(response));
  }
}

void Host::FlushReplies() {
  // Replies run user code that may call back into the Host (and so into the
  // core): only once the Ready is fully handled.
  while (!deferred_replies_.empty()) {
    auto [reply, response] = std::move(deferred_replies_.front());
    deferred_replies_.pop_front();
    reply(response);
  }
}

// ---------------------------------------------------------------------------
// Clients.

api::ClientResponse Host::NotLeader() const {
  api::ClientResponse response = Response(api::ClientResponse::STATUS_NOT_LEADER,
                                     "this node is not the leader");
  response.set_leader_hint(leader_.value());
  return response;
}

void Host::Submit(api::ClientRequest request, Reply reply) {
  CHECK(started_);
  if (raw_node_ == nullptr) {
    reply(Response(api::ClientResponse::STATUS_NOT_LEADER, "node is still starting"));
    return;
  }
  if (!is_leader()) {
    if (request.allow_forward() && !leader_.is_none() && leader_ != options_.id) {
      Forward(std::move(request), std::move(reply));
    } else {
      reply(NotLeader());
    }
    ProcessReady();
    return;
  }
  switch (request.op_case()) {
    case api::ClientRequest::kCommand:
      SubmitCommand(std::move(*request.mutable_command()), std::move(reply));
      break;
    case api::ClientRequest::kQuery:
      SubmitQuery(request.query(), std::move(reply));
      break;
    case api::ClientRequest::OP_NOT_SET:
      reply(Response(api::ClientResponse::STATUS_REJECTED, "request has no operation"));
      break;
  }
  ProcessReady();
}

void Host::SubmitCommand(cluster::Command command, Reply reply) {
  if (command.op_case() == cluster::Command::OP_NOT_SET) {
    reply(Response(api::ClientResponse::STATUS_REJECTED, "command has no operation"));
    return;
  }
  const RequestKey key(command.request_id().client_id(),
                       command.request_id().sequence());
  if (key.first != 0) {
    if (pending_writes_.size() >= kPendingWritesMax) {
      reply(Response(api::ClientResponse::STATUS_REJECTED,
                     absl::StrCat("too many writes in flight (",
                                  kPendingWritesMax, ")")));
      return;
    }
    auto it = pending_writes_.find(key);
    if (it != pending_writes_.end()) {
      // A retry of a write still in flight: the earlier caller will never be
      // answered by this entry twice, so it learns the outcome is unknown.
      Reply earlier = std::move(it->second);
      pending_writes_.erase(it);
      earlier(Response(api::ClientResponse::STATUS_UNKNOWN, "superseded by a retry"));
    }
  }
  command.set_log_time_ms(LogTimeMs());
  std::string data = command.SerializeAsString();
  const raft::ProposalResult result = raw_node_->Propose(std::move(data));
  if (result != raft::ProposalResult::kAccepted) {
    api::ClientResponse response = NotLeader();
    response.set_error(absl::StrCat("proposal dropped: ",
                                    raft::ProposalResultName(result)));
    reply(response);
    return;
  }
  last_proposal_ = Now();
  if (Planted(PlantedBug::kAckBeforeDurable) && key.first != 0) {
    // PLANTED BUG kAckBeforeDurable (core/base/planted_bug.h): the leader
    // answers "done" as soon as the entry is in its own log — not durable
    // anywhere, not committed — with the optimistic answer such a server
    // gives (it cannot know the result before apply).
    const raft::Raft& raft = raw_node_->raft();
    const Index index = raft.log().LastIndex();
    observer_->OnAcknowledge(options_.id, index, raft.term());
    api::ClientResponse response;
    response.set_status(api::ClientResponse::STATUS_OK);
    response.mutable_result()->set_code(cluster::RESULT_OK);
    response.set_index(index.value());
    response.set_term(raft.term().value());
    reply(response);
    return;
  }
  if (key.first != 0) {
    pending_writes_.emplace(key, std::move(reply));
  } else {
    // Writes without a session cannot be matched to their entry (nor
    // deduplicated): the caller learns only that the proposal was accepted.
    reply(Response(api::ClientResponse::STATUS_UNKNOWN, "accepted without a session"));
  }
}

void Host::SubmitQuery(const cluster::Query& query, Reply reply) {
  if (pending_reads_.size() >= kPendingReadsMax) {
    reply(Response(api::ClientResponse::STATUS_REJECTED, "too many reads in flight"));
    return;
  }
  if (Planted(PlantedBug::kReadWithoutReadIndex)) {
    // PLANTED BUG kReadWithoutReadIndex (core/base/planted_bug.h): a node
    // that believes it leads answers from its own state at once, without
    // confirming leadership or its commit index (thesis §6.4).
    api::ClientResponse response;
    response.set_status(api::ClientResponse::STATUS_OK);
    *response.mutable_query_result() = sm_->Query(query);
    response.set_index(applied_.value());
    reply(response);
    return;
  }
  const uint64_t id = next_read_id_++;
  const raft::ProposalResult result = raw_node_->ReadIndex(EncodeReadId(id));
  if (result != raft::ProposalResult::kAccepted) {
    api::ClientResponse response = NotLeader();
    response.set_error(absl::StrCat("read dropped: ",
                                    raft::ProposalResultName(result)));
    reply(response);
    return;
  }
  pending_reads_.emplace(id, PendingRead{query, std::move(reply)});
}

void Host::Forward(api::ClientRequest request, Reply reply) {
  if (forwards_.size() >= kPendingForwardsMax) {
    reply(Response(api::ClientResponse::STATUS_REJECTED, "too many forwards in flight"));
    return;
  }
  const uint64_t id = next_forward_id_++;
  const bool is_query = request.has_query();
  HostMessage message;
  message.mutable_forward()->set_forward_id(id);
  *message.mutable_forward()->mutable_request() = std::move(request);
  forwards_.emplace(id, PendingForward{is_query, Now() + options_.forward_timeout_us,
                                       std::move(reply)});
  SendHostMessage(leader_, message);
}

void Host::SweepForwards() {
  const MonoMicros now = Now();
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    Reply reply = std::move(it->second.reply);
    const bool is_query = it->second.is_query;
    it = forwards_.erase(it);
    reply(is_query ? NotLeader()
                   : Response(api::ClientResponse::STATUS_UNKNOWN,
                              "forwarded request timed out"));
  }
}

void Host::FailPending(api::ClientResponse::Status status, absl::string_view why) {
  // Deferred: this runs while a Ready is being handled.
  for (auto& [key, reply] : pending_writes_) {
    deferred_replies_.emplace_back(std::move(reply), Response(status, why));
  }
  pending_writes_.clear();
  for (auto& [id, read] : pending_reads_) {
    deferred_replies_.emplace_back(std::move(read.reply), NotLeader());
  }
  pending_reads_.clear();
}

bool Host::ProposeConfChange(const raft::ConfChange& change) {
  if (raw_node_ == nullptr || !is_leader()) return false;
  const bool accepted =
      raw_node_->ProposeConfChange(change) == raft::ProposalResult::kAccepted;
  ProcessReady();
  return accepted;
}

bool Host::TransferLeader(NodeId to) {
  if (raw_node_ == nullptr || !is_leader()) return false;
  raw_node_->TransferLeader(to);
  ProcessReady();
  return true;
}

// ---------------------------------------------------------------------------
// Leader controllers.

uint64_t Host::LogTimeMs() const {
  const int64_t now_ms = (Now() + log_time_offset_us_) / kMicrosPerMilli;
  return std::max<uint64_t>(static_cast<uint64_t>(std::max<int64_t>(now_ms, 0)),
                            sm_->now_ms());
}

void Host::OnBecameLeader() {
  // Log time continues from the replicated clock at this node's rate,
  // whatever this node's monotonic clock reads: its uptime may be days ahead
  // of (or behind) the last leader's, and a clamped offset would move log
  // time by the difference (every timeout, backoff and grace expiring at
  // once). The offset is signed and kept in microseconds so that rounding
  // never accumulates over elections.
  log_time_offset_us_ = static_cast<int64_t>(sm_->now_ms()) * kMicrosPerMilli - Now();
  // Every worker gets a full TTL from now: the old leader's view is gone.
  last_heartbeat_.clear();
  const MonoMicros now = Now();
  for (const auto& [node_id, worker] : sm_->workers()) last_heartbeat_[node_id] = now;
  controller_cooldown_.clear();
  last_proposal_ = now;
  logger_->Info("n", options_.id.value(), " became leader in term ", term_.value());
}

void Host::ProposeInternal(cluster::Command command) {
  command.set_log_time_ms(LogTimeMs());
  if (raw_node_->Propose(command.SerializeAsString()) ==
      raft::ProposalResult::kAccepted) {
    last_proposal_ = Now();
  }
}

void Host::RunControllers() {
  const MonoMicros now = Now();
  // Acts at most once per TTL on each subject, so a proposal in flight is
  // not repeated every tick.
  auto cooled = [&](const std::string& subject) {
    auto it = controller_cooldown_.find(subject);
    if (it != controller_cooldown_.end() && now - it->second < options_.worker_ttl_us) {
      return false;
    }
    controller_cooldown_[subject] = now;
    return true;
  };
  for (const auto& [node_id, worker] : sm_->workers()) {
    auto seen = last_heartbeat_.find(node_id);
    const MonoMicros last = seen == last_heartbeat_.end() ? now : seen->second;
    if (seen == last_heartbeat_.end()) last_heartbeat_[node_id] = now;
    const bool silent = now - last > options_.worker_ttl_us;
    const cluster::WorkerStatus status = worker.status();
    if (silent && (status == cluster::WORKER_ONLINE || status == cluster::WORKER_BUSY ||
                   status == cluster::WORKER_DRAINING)) {
      if (cooled(absl::StrCat("lost/", node_id))) {
        cluster::Command command;
        command.mutable_worker_lost()->set_node_id(node_id);
        command.mutable_worker_lost()->set_reason(
            absl::StrCat("no heartbeat for ", (now - last) / kMicrosPerMilli, " ms"));
        ProposeInternal(std::move(command));
      }
    } else if (!silent && status == cluster::WORKER_OFFLINE) {
      if (cooled(absl::StrCat("back/", node_id))) {
        cluster::Command command;
        command.mutable_set_worker_status()->set_node_id(node_id);
        command.mutable_set_worker_status()->set_status(cluster::WORKER_ONLINE);
        ProposeInternal(std::move(command));
      }
    }
  }
  // Tasks whose worker never reported an end (its node went quiet without
  // being declared lost, or the report was lost for good).
  const uint64_t state_ms = sm_->now_ms();
  for (const auto& [task_id, task] : sm_->tasks()) {
    if (task.state() != cluster::TASK_RUNNING || task.spec().timeout_secs() == 0) continue;
    const uint64_t deadline = task.assigned_time_ms() +
                              task.spec().timeout_secs() * 1000 +
                              options_.task_timeout_slack_ms;
    if (state_ms < deadline || !cooled(absl::StrCat("timeout/", task_id))) continue;
    cluster::Command command;
    cluster::TaskFinished* finished = command.mutable_task_finished();
    finished->set_task_id(task_id);
    finished->set_worker_id(task.worker_id());
    finished->mutable_result()->set_attempt(task.attempt());
    finished->mutable_result()->set_timed_out(true);
    finished->mutable_result()->set_error("timed out (declared by the leader)");
    ProposeInternal(std::move(command));
  }
  if (now - last_proposal_ >= options_.advance_time_us) {
    cluster::Command command;
    command.mutable_advance_time();
    ProposeInternal(std::move(command));
  }
}

// ---------------------------------------------------------------------------
// The agent: this node as a worker.

void Host::Report(cluster::Command command, std::string key) {
  reports_[std::move(key)] = std::move(command);
}

bool Host::ReportSatisfied(const cluster::Command& command) const {
  switch (command.op_case()) {
    case cluster::Command::kRegisterWorker:
      return sm_->FindWorker(command.register_worker().node_id()) != nullptr;
    case cluster::Command::kTaskStarted: {
      const cluster::TaskStarted& started = command.task_started();
      const cluster::TaskRecord* task = sm_->FindTask(started.task_id());
      return task == nullptr || task->attempt() != started.attempt() ||
             task->state() != cluster::TASK_ASSIGNED;
    }
    case cluster::Command::kTaskFinished: {
      const cluster::TaskFinished& finished = command.task_finished();
      const cluster::TaskRecord* task = sm_->FindTask(finished.task_id());
      return task == nullptr || task->attempt() != finished.result().attempt() ||
             (task->state() != cluster::TASK_ASSIGNED &&
              task->state() != cluster::TASK_RUNNING);
    }
    case cluster::Command::kVmObserved: {
      // The agent recomputes the next step every pass; an old one that
      // landed, or no longer fits the placement, is done.
      const cluster::VmObserved& observed = command.vm_observed();
      const cluster::VmRecord* vm = sm_->FindVm(observed.name());
      return vm == nullptr || vm->generation() != observed.generation() ||
             vm->worker_id() != observed.worker_id() ||
             vm->observed() == observed.state();
    }
    default:
      return true;
  }
}

void Host::RunAgent() {
  if (!options_.worker.has_value()) return;
  const MonoMicros now = Now();
  const uint64_t self = options_.id.value();
  const cluster::WorkerRecord* me = sm_->FindWorker(self);
  if (me == nullptr) {
    if (now - last_registration_ >= options_.agent_heartbeat_us) {
      last_registration_ = now;
      cluster::Command command;
      *command.mutable_register_worker() = *options_.worker;
      command.mutable_register_worker()->set_node_id(self);
      Report(std::move(command), "register");
    }
  }
  if (now - last_agent_heartbeat_ >= options_.agent_heartbeat_us && !leader_.is_none()) {
    last_agent_heartbeat_ = now;
    HostMessage heartbeat;
    heartbeat.mutable_heartbeat()->set_node_id(self);
    SendHostMessage(leader_, heartbeat);
    // Reports are level-triggered: each is resent until the replicated
    // state shows it (or shows it no longer matters), so a lost proposal, a
    // leader change or a restart never loses one and a duplicate is
    // harmless (the state machine rejects it).
    for (auto it = reports_.begin(); it != reports_.end();) {
      if (ReportSatisfied(it->second)) {
        it = reports_.erase(it);
      } else {
        ++it;
      }
    }
    const std::map<std::string, cluster::Command> pending = reports_;
    for (const auto& [key, command] : pending) {
      api::ClientRequest request;
      *request.mutable_command() = command;
      request.set_allow_forward(true);
      Submit(std::move(request), [](const api::ClientResponse&) {});
    }
  }

  // The rest is a function of the replicated state and of what the
  // executor runs: with neither changed since the last pass (and no start
  // to retry), it would issue the same Start/Stop calls (no-ops by then)
  // and the same reports, so a tick skips it.
  if (!agent_dirty_) return;
  agent_dirty_ = false;

  // Tasks: start what is assigned here, stop what moved away.
  // Only this worker's work, through the state machine's per-worker
  // indexes.
  for (const cluster::TaskRecord* active : sm_->ActiveTasksOn(self)) {
    const cluster::TaskRecord& task = *active;
    auto running = running_tasks_.find(task.task_id());
    if (running != running_tasks_.end() && running->second == task.attempt()) continue;
    if (running != running_tasks_.end()) {
      env_.executor->Stop(WorkKind::kTask, task.task_id());
      continue;  // the new attempt starts once the old one has exited
    }
    if (task.state() == cluster::TASK_RUNNING) {
      // Running in the log but not here: this node restarted under it.
      cluster::Command command;
      cluster::TaskFinished* finished = command.mutable_task_finished();
      finished->set_task_id(task.task_id());
      finished->set_worker_id(self);
      finished->mutable_result()->set_attempt(task.attempt());
      finished->mutable_result()->set_exit_code(-1);
      finished->mutable_result()->set_error("worker restarted while the task ran");
      Report(std::move(command), absl::StrCat("finished/", task.task_id(), "/", task.attempt()));
      continue;
    }
    WorkSpec spec;
    spec.kind = WorkKind::kTask;
    spec.id = task.task_id();
    spec.command = task.spec().command();
    spec.args.assign(task.spec().args().begin(), task.spec().args().end());
    spec.timeout_us = static_cast<int64_t>(task.spec().timeout_secs()) * kMicrosPerSecond;
    if (spec.command.empty()) spec.command = "true";
    const absl::Status started = env_.executor->Start(spec);
    if (started.ok()) {
      running_tasks_[task.task_id()] = task.attempt();
    } else {
      agent_dirty_ = true;  // retried on the next tick
      logger_->Warning("n", self, " could not start task ", task.task_id(), ": ",
                       started.ToString());
    }
  }
  // A task is active here exactly when its record names this worker (the
  // state machine keeps worker_id at 0 for tasks not placed).
  for (const auto& [task_id, attempt] : running_tasks_) {
    const cluster::TaskRecord* task = sm_->FindTask(task_id);
    if (task == nullptr || task->worker_id() != self) {
      env_.executor->Stop(WorkKind::kTask, task_id);
    }
  }

  // VMs: run what is placed here and desired running; stop the rest. The
  // log learns what the executor sees one legal step at a time (the state
  // machine's transition table), each step resent until it lands.
  for (const cluster::VmRecord* placed : sm_->VmsOn(self)) {
    const cluster::VmRecord& vm = *placed;
    const std::string& name = vm.name();
    const bool want_running = vm.desired() == cluster::VM_DESIRED_RUNNING;
    auto local = local_vms_.find(name);
    if (local != local_vms_.end() && local->second.generation != vm.generation()) {
      // Placed here again after a migration away and back: a new life.
      if (local->second.phase != VmPhase::kExited) {
        env_.executor->Stop(WorkKind::kVm, name);
        continue;
      }
      local_vms_.erase(local);
      local = local_vms_.end();
    }
    if (want_running && (local == local_vms_.end() ||
                         local->second.phase == VmPhase::kExited)) {
      WorkSpec spec;
      spec.kind = WorkKind::kVm;
      spec.id = name;
      spec.command = vm.spec().image().empty() ? "vm" : vm.spec().image();
      spec.vcpus = static_cast<uint32_t>(vm.spec().vcpus());
      spec.memory_mb = vm.spec().memory_mb();
      spec.disk_gb = vm.spec().disk_gb();
      if (env_.executor->Start(spec).ok()) {
        local_vms_[name] = LocalVm{vm.generation(), VmPhase::kStarting, false};
      } else {
        agent_dirty_ = true;  // retried on the next tick
      }
    } else if (!want_running && local != local_vms_.end() &&
               local->second.phase != VmPhase::kExited && !local->second.stopping) {
      if (env_.executor->Stop(WorkKind::kVm, name)) local->second.stopping = true;
    }
    local = local_vms_.find(name);
    cluster::VmObservedState target = cluster::VM_STOPPED;
    if (local != local_vms_.end()) {
      switch (local->second.phase) {
        case VmPhase::kStarting:
          target = cluster::VM_STARTING;
          break;
        case VmPhase::kRunning:
          target = local->second.stopping ? cluster::VM_STOPPING : cluster::VM_RUNNING;
          break;
        case VmPhase::kExited:
          target = local->second.failed ? cluster::VM_FAILED : cluster::VM_STOPPED;
          break;
      }
    } else if (want_running) {
      continue;  // could not start it yet; nothing true to report
    }
    const cluster::VmObservedState next = NextVmStep(vm.observed(), target);
    if (next == cluster::VM_OBSERVED_UNSPECIFIED) continue;
    cluster::Command command;
    cluster::VmObserved* observed = command.mutable_vm_observed();
    observed->set_name(name);
    observed->set_worker_id(self);
    observed->set_state(next);
    observed->set_generation(vm.generation());
    Report(std::move(command), absl::StrCat("vm/", name));
  }
  for (auto it = local_vms_.begin(); it != local_vms_.end();) {
    const cluster::VmRecord* vm = sm_->FindVm(it->first);
    if (vm == nullptr || vm->worker_id() != self) {
      if (it->second.phase == VmPhase::kExited) {
        it = local_vms_.erase(it);
        continue;
      }
      if (!it->second.stopping && env_.executor->Stop(WorkKind::kVm, it->first)) {
        it->second.stopping = true;
      }
    }
    ++it;
  }
}

// The next legal observed state on the way from `from` to `to`
// (sm/transitions.h), or UNSPECIFIED when there is nothing to report.
cluster::VmObservedState Host::NextVmStep(cluster::VmObservedState from,
                                          cluster::VmObservedState to) {
  using S = cluster::VmObservedState;
  if (from == to) return cluster::VM_OBSERVED_UNSPECIFIED;
  if (to == cluster::VM_FAILED) return cluster::VM_FAILED;
  switch (from) {
    case cluster::VM_OBSERVED_UNSPECIFIED:
      return cluster::VM_CREATING;
    case cluster::VM_CREATING:
      return to == cluster::VM_STOPPED ? cluster::VM_STOPPED : cluster::VM_STARTING;
    case cluster::VM_STARTING:
      return to == cluster::VM_RUNNING ? cluster::VM_RUNNING : cluster::VM_STOPPING;
    case cluster::VM_RUNNING:
      return cluster::VM_STOPPING;
    case cluster::VM_STOPPING:
      return cluster::VM_STOPPED;
    case cluster::VM_STOPPED:
    case cluster::VM_FAILED:
      return to == cluster::VM_STOPPED ? cluster::VM_STOPPED : cluster::VM_STARTING;
    default:
      return S::VM_OBSERVED_UNSPECIFIED;
  }
}

void Host::OnWorkEvent(const WorkEvent& event) {
  const uint64_t self = options_.id.value();
  agent_dirty_ = true;
  if (event.kind == WorkKind::kTask) {
    auto it = running_tasks_.find(event.id);
    if (it == running_tasks_.end()) return;
    const uint32_t attempt = it->second;
    cluster::Command command;
    if (event.state == WorkEvent::State::kRunning) {
      command.mutable_task_started()->set_task_id(event.id);
      command.mutable_task_started()->set_worker_id(self);
      command.mutable_task_started()->set_attempt(attempt);
      Report(std::move(command), absl::StrCat("started/", event.id, "/", attempt));
    } else {
      running_tasks_.erase(it);
      if (event.reason == WorkEvent::Reason::kStopped) {
        ProcessReady();
        return;  // stopped because the log moved it: nothing to report
      }
      cluster::TaskFinished* finished = command.mutable_task_finished();
      finished->set_task_id(event.id);
      finished->set_worker_id(self);
      cluster::TaskResult* result = finished->mutable_result();
      result->set_attempt(attempt);
      result->set_exit_code(event.exit_code);
      result->set_success(event.reason == WorkEvent::Reason::kFinished &&
                          event.exit_code == 0);
      result->set_timed_out(event.reason == WorkEvent::Reason::kTimedOut);
      result->set_output_tail(event.output_tail);
      result->set_execution_time_ms(static_cast<uint64_t>(event.duration_us / kMicrosPerMilli));
      if (event.reason == WorkEvent::Reason::kFailed) result->set_error("could not run");
      reports_.erase(absl::StrCat("started/", event.id, "/", attempt));
      Report(std::move(command), absl::StrCat("finished/", event.id, "/", attempt));
    }
  } else {
    auto it = local_vms_.find(event.id);
    if (it == local_vms_.end()) return;
    if (event.state == WorkEvent::State::kRunning) {
      it->second.phase = VmPhase::kRunning;
    } else {
      it->second.phase = VmPhase::kExited;
      it->second.failed = event.reason != WorkEvent::Reason::kStopped;
      it->second.stopping = false;
    }
    RunAgent();
  }
  ProcessReady();
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
  // O(state): where expensive checks are on, and only when an apply or a
  // snapshot changed the state since the last check (this runs after every
  // simulated event).
  if (kExpensiveChecks && sm_checked_at_ != applied_) {
    sm_->CheckInvariants();
    sm_checked_at_ = applied_;
  }
}

}  // namespace blixard::host
