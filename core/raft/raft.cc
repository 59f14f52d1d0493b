#include "core/raft/raft.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/coverage_mark.h"
#include "core/base/planted_bug.h"
#include "core/base/status_macros.h"
#include "core/raft/confchange.h"
#include "core/raft/util.h"

namespace blixard::raft {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower: return "StateFollower";
    case Role::kCandidate: return "StateCandidate";
    case Role::kPreCandidate: return "StatePreCandidate";
    case Role::kLeader: return "StateLeader";
  }
  return "?";
}

const char* ProposalResultName(ProposalResult result) {
  switch (result) {
    case ProposalResult::kAccepted: return "accepted";
    case ProposalResult::kForwarded: return "forwarded";
    case ProposalResult::kDroppedNoLeader: return "dropped: no leader";
    case ProposalResult::kDroppedForwardingDisabled: return "dropped: forwarding disabled";
    case ProposalResult::kDroppedTransferring: return "dropped: leadership transfer in progress";
    case ProposalResult::kDroppedUncommittedLimit: return "dropped: uncommitted size limit";
    case ProposalResult::kDroppedNotMember: return "dropped: not a member";
    case ProposalResult::kDroppedQueueFull: return "dropped: queue full";
  }
  return "?";
}

Raft::Raft(const Config& config)
    : config_(config),
      id_(config.id),
      logger_(config.logger),
      rng_(config.seed),
      log_(config.storage, config.logger),
      tracker_(config.max_inflight_msgs, config.max_inflight_bytes),
      read_only_(config.read_only_option, kReadIndexPendingMax) {}

absl::StatusOr<std::unique_ptr<Raft>> Raft::Create(const Config& config) {
  RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<Raft> raft(new Raft(config));
  RETURN_IF_ERROR(raft->Init());
  return raft;
}

absl::Status Raft::Init() {
  ASSIGN_OR_RETURN(InitialState init, config_.storage->GetInitialState());
  absl::StatusOr<ConfigAndProgress> cp =
      RestoreConfig(tracker_, log_.LastIndex(), init.conf_state);
  if (!cp.ok()) {
    return absl::DataLossError(absl::StrCat("storage conf state: ", cp.status().message()));
  }
  tracker_.config() = std::move(cp->config);
  tracker_.progress() = std::move(cp->progress);
  tracker_.CheckMembership();
  const Progress* self = tracker_.Find(id_);
  is_learner_ = self != nullptr && self->is_learner();

  const HardState& hs = init.hard_state;
  if (!IsEmptyHardState(hs)) {
    // A snapshot only ever holds committed state, so a stored commit index
    // below it (the Host snapshotted applied entries before the Ready that
    // carried their commit index was durable) is raised to it.
    const Index commit = std::max(Index(hs.commit()), log_.committed());
    if (commit > log_.LastIndex()) {
      return absl::DataLossError(absl::StrCat(
          "hard state commit ", commit.value(), " is beyond the last index ",
          log_.LastIndex().value()));
    }
    log_.CommitTo(commit);
    term_ = Term(hs.term());
    vote_ = NodeId(hs.vote());
  }
  if (config_.applied > Index(0)) {
    if (config_.applied > log_.committed()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config applied ", config_.applied.value(), " beyond commit ",
          log_.committed().value()));
    }
    log_.AppliedTo(config_.applied);
  }
  BecomeFollower(term_, kNoNode);
  std::string nodes;
  for (NodeId n : tracker_.VoterIds()) absl::StrAppend(&nodes, nodes.empty() ? "" : ",", n.value());
  logger_->Info("newRaft ", id_.value(), " [peers: [", nodes, "], term: ",
                term_.value(), ", commit: ", log_.committed().value(),
                ", applied: ", log_.applied().value(), ", lastindex: ",
                log_.LastIndex().value(), ", lastterm: ", log_.LastTerm().value(),
                "]");
  return absl::OkStatus();
}

std::string Raft::Prefix() const { return absl::StrCat(id_.value()); }

HardState Raft::GetHardState() const {
  HardState hs;
  hs.set_term(term_.value());
  hs.set_vote(vote_.value());
  hs.set_commit(log_.committed().value());
  return hs;
}

// ---------------------------------------------------------------------------
// Sending.

void Raft::Send(Message&& m) {
  if (m.from() == 0) m.set_from(id_.value());
  const MessageType t = m.type();
  if (t == MSG_VOTE || t == MSG_VOTE_RESPONSE || t == MSG_PRE_VOTE ||
      t == MSG_PRE_VOTE_RESPONSE) {
    // Votes carry their own term: a pre-vote asks for a future term, and a
    // granted pre-vote answers with that future term.
    CHECK_NE(m.term(), 0u) << "vote message without a term: " << DescribeMessage(m);
  } else {
    CHECK_EQ(m.term(), 0u) << "term set by caller: " << DescribeMessage(m);
    // Forwarded proposals and reads keep term 0: they are local requests at
    // the leader, never a sign of a newer term.
    if (t != MSG_PROPOSE && t != MSG_READ_INDEX) m.set_term(term_.value());
  }
  if (m.to() == id_.value()) {
    CHECK(t == MSG_APPEND_RESPONSE || t == MSG_VOTE_RESPONSE ||
          t == MSG_PRE_VOTE_RESPONSE)
        << "unexpected self message " << DescribeMessage(m);
    self_after_persist_.push_back(std::move(m));
    return;
  }
  // Acks and vote grants promise durability of this node's state (Raft
  // Figure 2: "respond after persisting"), so they wait for the write.
  if (t == MSG_APPEND_RESPONSE || t == MSG_VOTE_RESPONSE ||
      t == MSG_PRE_VOTE_RESPONSE) {
    msgs_after_persist_.push_back(std::move(m));
  } else {
    // GetReady hands the vector over whole, so each Ready starts from no
    // capacity; room for one message per member saves the regrowth (and
    // its Message moves) of a broadcast.
    if (msgs_.capacity() == 0) msgs_.reserve(tracker_.progress().size());
    msgs_.push_back(std::move(m));
  }
}

bool Raft::MaybeSendAppend(NodeId to, bool send_if_empty) {
  Progress* pr = tracker_.Find(to);
  if (pr == nullptr || pr->IsPaused()) return false;
  const Index prev_index = pr->next().Prev();
  absl::StatusOr<Term> prev_term = log_.TermAt(prev_index);
  Message m;
  uint64_t bytes = 0;
  absl::Status entries_status;
  if (pr->state() != ProgressState::kReplicate || !pr->inflights().Full()) {
    entries_status = log_.CopyEntriesFrom(pr->next(), config_.max_size_per_msg,
                                          m.mutable_entries(), &bytes);
  }
  if (entries_status.ok() && m.entries_size() == 0 && !send_if_empty &&
      prev_term.ok()) {
    return false;
  }
  if (!prev_term.ok() || !entries_status.ok()) {
    // The entries the follower needs were compacted: send a snapshot.
    return MaybeSendSnapshot(to, *pr);
  }
  const uint64_t count = static_cast<uint64_t>(m.entries_size());
  m.set_type(MSG_APPEND);
  m.set_to(to.value());
  m.set_index(prev_index.value());
  m.set_log_term(prev_term->value());
  m.set_commit(log_.committed().value());
  pr->SentEntries(count, bytes);
  Send(std::move(m));
  return true;
}

bool Raft::MaybeSendSnapshot(NodeId to, Progress& pr) {
  if (!pr.recent_active()) {
    logger_->Debug(Prefix(), " ignore sending snapshot to ", to.value(),
                   " since it is not recently active");
    return false;
  }
  absl::StatusOr<Snapshot> snapshot = log_.GetSnapshot();
  if (!snapshot.ok()) {
    if (IsSnapshotTemporarilyUnavailable(snapshot.status())) {
      logger_->Debug(Prefix(), " failed to send snapshot to ", to.value(),
                     " because snapshot is temporarily unavailable");
    } else {
      logger_->Error(Prefix(), " cannot read snapshot: ", snapshot.status().ToString());
    }
    return false;
  }
  if (IsEmptySnapshot(*snapshot)) {
    logger_->Error(Prefix(), " need a non-empty snapshot for ", to.value());
    return false;
  }
  const Index sindex(snapshot->metadata().index());
  logger_->Debug(Prefix(), " [firstindex: ", log_.FirstIndex().value(),
                 ", commit: ", log_.committed().value(),
                 "] sent snapshot[index: ", sindex.value(), ", term: ",
                 snapshot->metadata().term(), "] to ", to.value(), " [",
                 pr.ToString(), "]");
  pr.BecomeSnapshot(sindex);
  Message m;
  m.set_type(MSG_SNAPSHOT);
  m.set_to(to.value());
  *m.mutable_snapshot() = std::move(*snapshot);
  Send(std::move(m));
  return true;
}

void Raft::SendHeartbeat(NodeId to, const std::string& context) {
  const Progress* pr = tracker_.Find(to);
  // Never tell a follower to commit beyond what it is known to hold.
  const Index commit = std::min(pr->match(), log_.committed());
  Message m;
  m.set_type(MSG_HEARTBEAT);
  m.set_to(to.value());
  m.set_commit(commit.value());
  m.set_context(context);
  Send(std::move(m));
}

void Raft::FlushPendingAppends() {
  if (!bcast_pending_) return;
  bcast_pending_ = false;
  if (role_ == Role::kLeader) BcastAppend();
}

void Raft::BcastAppend() {
  for (auto& [id, pr] : tracker_.progress()) {
    if (id == id_) continue;
    SendAppend(id);
  }
}

void Raft::BcastHeartbeat() {
  BcastHeartbeatWithContext(read_only_.LastPendingRequestContext());
}

void Raft::BcastHeartbeatWithContext(const std::string& context) {
  for (auto& [id, pr] : tracker_.progress()) {
    if (id == id_) continue;
    SendHeartbeat(id, context);
  }
}

void Raft::SendTimeoutNow(NodeId to) {
  Message m;
  m.set_type(MSG_TIMEOUT_NOW);
  m.set_to(to.value());
  Send(std::move(m));
}

// ---------------------------------------------------------------------------
// Role transitions.

void Raft::ResetRandomizedElectionTimeout() {
  const uint64_t et = static_cast<uint64_t>(config_.election_tick);
  randomized_election_timeout_ = static_cast<int>(et + rng_.Uniform(et));
}

void Raft::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  tracker_.ResetVotes();
  const Index last = log_.LastIndex();
  for (auto& [id, pr] : tracker_.progress()) {
    const bool learner = pr.is_learner();
    pr = Progress(Index(0), last.Next(), config_.max_inflight_msgs,
                  config_.max_inflight_bytes, learner);
    if (id == id_) {
      // Only what is durable counts toward the commit quorum.
      pr.set_match(std::min(log_.PersistedLastIndex(), last));
    }
  }
  pending_conf_index_ = Index(0);
  self_removal_index_ = Index(0);
  uncommitted_size_ = 0;
  read_only_ = ReadOnly(config_.read_only_option, kReadIndexPendingMax);
  pending_read_index_messages_.clear();
}

void Raft::BecomeFollower(Term term, NodeId lead) {
  Reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
  logger_->Info(Prefix(), " became follower at term ", term_.value());
}

void Raft::BecomeCandidate() {
  CHECK(role_ != Role::kLeader) << "invalid transition [leader -> candidate]";
  Reset(term_.Next());
  vote_ = id_;
  role_ = Role::kCandidate;
  logger_->Info(Prefix(), " became candidate at term ", term_.value());
}

void Raft::BecomePreCandidate() {
  CHECK(role_ != Role::kLeader) << "invalid transition [leader -> pre-candidate]";
  // Pre-candidates keep their term and vote (thesis 9.6).
  tracker_.ResetVotes();
  lead_ = kNoNode;
  role_ = Role::kPreCandidate;
  logger_->Info(Prefix(), " became pre-candidate at term ", term_.value());
}

void Raft::BecomeLeader() {
  CHECK(role_ != Role::kFollower) << "invalid transition [follower -> leader]";
  Reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  Progress* self = tracker_.Find(id_);
  if (self != nullptr) {
    self->BecomeReplicate();
    self->set_recent_active(true);
  }
  // Conservatively treat every conf change in the log as pending: we don't
  // know which are applied.
  pending_conf_index_ = log_.LastIndex();
  // An unapplied change in our log may remove us (we proposed it in an
  // earlier term): find it, so we append nothing after it but the empty
  // entry below (see self_removal_index_).
  bool unapplied_conf_change = false;
  if (log_.LastIndex() > log_.applied()) {
    absl::StatusOr<std::vector<Entry>> unapplied =
        log_.Slice(log_.applied().Next(), log_.LastIndex().Next(), UINT64_MAX);
    CHECK_OK(unapplied.status()) << "unapplied entries are never compacted";
    for (const Entry& e : *unapplied) {
      if (e.type() == ENTRY_CONF_CHANGE) unapplied_conf_change = true;
      ConfChange cc;
      if (e.type() == ENTRY_CONF_CHANGE && cc.ParseFromString(e.data()) &&
          ConfChangeRemovesSelf(cc)) {
        self_removal_index_ = Index(e.index());
      }
    }
  }
  if (unapplied_conf_change) COVERAGE_MARK(conf_change_during_election);
  // Raft paper 5.4.2 / thesis 6.4: an empty entry of the new term commits
  // everything before it and lets ReadIndex start.
  std::vector<Entry> empty(1);
  CHECK(AppendEntries(std::move(empty))) << "empty entry was dropped";
  logger_->Info(Prefix(), " became leader at term ", term_.value());
}

// ---------------------------------------------------------------------------
// Elections.

bool Raft::Promotable() const {
  const Progress* pr = tracker_.Find(id_);
  return pr != nullptr && !pr->is_learner() && !log_.HasNextOrInProgressSnapshot();
}

void Raft::Hup(CampaignType type) {
  if (role_ == Role::kLeader) {
    logger_->Debug(Prefix(), " ignoring MsgHup because already leader");
    return;
  }
  if (!Promotable()) {
    logger_->Warning(Prefix(), " is unpromotable and can not campaign");
    return;
  }
  // A conf change committed but not applied would change who may vote.
  if (log_.applied() < log_.committed()) {
    absl::StatusOr<std::vector<Entry>> ents =
        log_.Slice(log_.applied().Next(), log_.committed().Next(), kNoLimit);
    if (!ents.ok()) {
      logger_->Error(Prefix(), " cannot campaign: ", ents.status().ToString());
      return;
    }
    size_t pending = 0;
    for (const Entry& e : *ents) pending += e.type() == ENTRY_CONF_CHANGE ? 1 : 0;
    if (pending > 0) {
      logger_->Warning(Prefix(), " cannot campaign at term ", term_.value(),
                       " since there are still ", pending,
                       " pending configuration changes to apply");
      return;
    }
  }
  logger_->Info(Prefix(), " is starting a new election at term ", term_.value());
  DoCampaign(type);
}

void Raft::DoCampaign(CampaignType type) {
  Term term;
  MessageType vote_type;
  if (type == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_type = MSG_PRE_VOTE;
    term = term_.Next();  // the term we would campaign in
  } else {
    BecomeCandidate();
    vote_type = MSG_VOTE;
    term = term_;
    if (HasUnappliedConfChange()) COVERAGE_MARK(conf_change_during_election);
  }
  for (NodeId id : tracker_.VoterIds()) {
    if (id == id_) {
      // Our own vote counts only once it is durable.
      Message self;
      self.set_type(VoteResponseType(vote_type));
      self.set_to(id_.value());
      self.set_term(term.value());
      Send(std::move(self));
      continue;
    }
    logger_->Info(Prefix(), " [logterm: ", log_.LastTerm().value(), ", index: ",
                  log_.LastIndex().value(), "] sent ", MessageTypeName(vote_type),
                  " request to ", id.value(), " at term ", term_.value());
    Message m;
    m.set_type(vote_type);
    m.set_to(id.value());
    m.set_term(term.value());
    m.set_index(log_.LastIndex().value());
    m.set_log_term(log_.LastTerm().value());
    if (type == CampaignType::kTransfer) m.set_context(kCampaignTransferContext);
    Send(std::move(m));
  }
}

VoteResult Raft::Poll(NodeId id, MessageType type, bool granted) {
  if (granted) {
    logger_->Info(Prefix(), " received ", MessageTypeName(type), " from ",
                  id.value(), " at term ", term_.value());
  } else {
    logger_->Info(Prefix(), " received ", MessageTypeName(type),
                  " rejection from ", id.value(), " at term ", term_.value());
  }
  tracker_.RecordVote(id, granted);
  ProgressTracker::Tally tally = tracker_.TallyVotes();
  logger_->Info(Prefix(), " has received ", tally.granted, " ",
                MessageTypeName(type), " votes and ", tally.rejected,
                " vote rejections");
  return tally.result;
}

bool Raft::HasUnappliedConfChange() const {
  // Only for a coverage mark: reads the unapplied tail (short on a node that
  // campaigns), decides nothing. An unreadable tail counts as none.
  if (log_.applied() >= log_.LastIndex()) return false;
  absl::StatusOr<std::vector<Entry>> ents =
      log_.Slice(log_.applied().Next(), log_.LastIndex().Next(), kNoLimit);
  if (!ents.ok()) return false;
  for (const Entry& e : *ents) {
    if (e.type() == ENTRY_CONF_CHANGE) return true;
  }
  return false;
}

void Raft::Campaign() {
  Message m;
  m.set_type(MSG_HUP);
  m.set_from(id_.value());
  Step(m);
}

// ---------------------------------------------------------------------------
// Step.

ProposalResult Raft::Step(Message& m) {
  const Term mterm(m.term());
  if (mterm == Term(0)) {
    // Local message (or a forwarded proposal / read).
  } else if (mterm > term_) {
    if (m.type() == MSG_VOTE || m.type() == MSG_PRE_VOTE) {
      const bool force = m.context() == kCampaignTransferContext;
      const bool in_lease = config_.check_quorum && !lead_.is_none() &&
                            election_elapsed_ < config_.election_tick;
      if (!force && in_lease) {
        // Leader stickiness (thesis 4.2.3): a live leader's followers do
        // not let a partitioned node disrupt the cluster.
        logger_->Info(Prefix(), " [logterm: ", log_.LastTerm().value(),
                      ", index: ", log_.LastIndex().value(), ", vote: ",
                      vote_.value(), "] ignored ", MessageTypeName(m.type()),
                      " from ", m.from(), " [logterm: ", m.log_term(),
                      ", index: ", m.index(), "] at term ", term_.value(),
                      ": lease is not expired (remaining ticks: ",
                      config_.election_tick - election_elapsed_, ")");
        return ProposalResult::kAccepted;
      }
    }
    if (m.type() == MSG_PRE_VOTE) {
      // Never change our term in response to a pre-vote.
    } else if (m.type() == MSG_PRE_VOTE_RESPONSE && !m.reject()) {
      // A granted pre-vote carries the future term we asked for.
    } else {
      logger_->Info(Prefix(), " [term: ", term_.value(),
                    "] received a ", MessageTypeName(m.type()),
                    " message with higher term from ", m.from(), " [term: ",
                    mterm.value(), "]");
      if (m.type() == MSG_APPEND || m.type() == MSG_HEARTBEAT ||
          m.type() == MSG_SNAPSHOT) {
        BecomeFollower(mterm, NodeId(m.from()));
      } else {
        BecomeFollower(mterm, kNoNode);
      }
    }
  } else if (mterm < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type() == MSG_HEARTBEAT || m.type() == MSG_APPEND)) {
      // A stale leader (e.g. partitioned, its term frozen by pre-vote or
      // stickiness) learns our term from this response and steps down.
      Message resp;
      resp.set_type(MSG_APPEND_RESPONSE);
      resp.set_to(m.from());
      Send(std::move(resp));
    } else if (m.type() == MSG_PRE_VOTE) {
      logger_->Info(Prefix(), " [logterm: ", log_.LastTerm().value(), ", index: ",
                    log_.LastIndex().value(), ", vote: ", vote_.value(),
                    "] rejected PreVote from ", m.from(), " [logterm: ",
                    m.log_term(), ", index: ", m.index(), "] at term ",
                    term_.value());
      Message resp;
      resp.set_type(MSG_PRE_VOTE_RESPONSE);
      resp.set_to(m.from());
      resp.set_term(term_.value());
      resp.set_reject(true);
      Send(std::move(resp));
    } else {
      logger_->Info(Prefix(), " [term: ", term_.value(), "] ignored a ",
                    MessageTypeName(m.type()), " message with lower term from ",
                    m.from(), " [term: ", mterm.value(), "]");
    }
    return ProposalResult::kAccepted;
  }

  switch (m.type()) {
    case MSG_HUP:
      Hup(config_.pre_vote ? CampaignType::kPreElection : CampaignType::kElection);
      return ProposalResult::kAccepted;
    case MSG_VOTE:
    case MSG_PRE_VOTE: {
      const NodeId from(m.from());
      // We can vote if this is a repeat of a vote we cast, or we have not
      // voted and know of no leader in this term, or it is a pre-vote for a
      // future term.
      const bool can_vote =
          vote_ == from || (vote_.is_none() && lead_.is_none()) ||
          (m.type() == MSG_PRE_VOTE && mterm > term_);
      // PLANTED BUG kVoteWithoutLogCheck (core/base/planted_bug.h): the
      // vote skips the up-to-date check of §5.4.1, so a candidate missing
      // committed entries can win.
      if (can_vote && (Planted(PlantedBug::kVoteWithoutLogCheck) ||
                       log_.IsUpToDate(Index(m.index()), Term(m.log_term())))) {
        logger_->Info(Prefix(), " [logterm: ", log_.LastTerm().value(),
                      ", index: ", log_.LastIndex().value(), ", vote: ",
                      vote_.value(), "] cast ", MessageTypeName(m.type()),
                      " for ", m.from(), " [logterm: ", m.log_term(),
                      ", index: ", m.index(), "] at term ", term_.value());
        Message resp;
        resp.set_type(VoteResponseType(m.type()));
        resp.set_to(m.from());
        resp.set_term(m.term());
        Send(std::move(resp));
        if (m.type() == MSG_VOTE) {
          election_elapsed_ = 0;
          vote_ = from;
        }
      } else {
        logger_->Info(Prefix(), " [logterm: ", log_.LastTerm().value(),
                      ", index: ", log_.LastIndex().value(), ", vote: ",
                      vote_.value(), "] rejected ", MessageTypeName(m.type()),
                      " from ", m.from(), " [logterm: ", m.log_term(),
                      ", index: ", m.index(), "] at term ", term_.value());
        Message resp;
        resp.set_type(VoteResponseType(m.type()));
        resp.set_to(m.from());
        resp.set_term(term_.value());
        resp.set_reject(true);
        Send(std::move(resp));
      }
      return ProposalResult::kAccepted;
    }
    default:
      break;
  }
  switch (role_) {
    case Role::kLeader: return StepLeader(m);
    case Role::kCandidate:
    case Role::kPreCandidate: return StepCandidate(m);
    case Role::kFollower: return StepFollower(m);
  }
  return ProposalResult::kAccepted;
}

ProposalResult Raft::HandlePropose(Message& m) {
  if (m.entries_size() == 0) {
    logger_->Warning(Prefix(), " stepped empty MsgProp");
    return ProposalResult::kAccepted;
  }
  std::vector<Entry> entries;
  entries.reserve(static_cast<size_t>(m.entries_size()));
  for (Entry& e : *m.mutable_entries()) entries.push_back(std::move(e));
  return LeaderPropose(entries);
}

bool Raft::ConfChangeRemovesSelf(const ConfChange& cc) const {
  // Conservative: a change that names us as removed or as a learner, or a
  // leave-joint when we are not an incoming voter.
  if (ConfChangeLeavesJoint(cc)) return !tracker_.config().voters.incoming().contains(id_);
  for (const ConfChangeSingle& c : cc.changes()) {
    if (c.node_id() == id_.value() && (c.type() == CONF_CHANGE_REMOVE_NODE ||
                                       c.type() == CONF_CHANGE_ADD_LEARNER_NODE)) {
      return true;
    }
  }
  return false;
}

ProposalResult Raft::LeaderPropose(std::vector<Entry>& entries) {
  CHECK(role_ == Role::kLeader);
  if (tracker_.Find(id_) == nullptr) {
    // Removed from the config (and still leader: step_down_on_removal off).
    return ProposalResult::kDroppedNotMember;
  }
  if (self_removal_index_ > log_.applied()) {
    for (const Entry& e : entries) {
      if (e.type() != ENTRY_CONF_CHANGE) {
        logger_->Debug(Prefix(), " leaving the config at index ",
                       self_removal_index_.value(), "; dropping proposal");
        return ProposalResult::kDroppedNotMember;
      }
    }
  }
  if (!lead_transferee_.is_none()) {
    logger_->Debug(Prefix(), " [term ", term_.value(),
                   "] transfer leadership to ", lead_transferee_.value(),
                   " is in progress; dropping proposal");
    return ProposalResult::kDroppedTransferring;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    Entry* e = &entries[i];
    if (e->type() != ENTRY_CONF_CHANGE) continue;
    ConfChange cc;
    std::string failed;
    if (!cc.ParseFromString(e->data())) {
      failed = "malformed conf change";
    } else {
      const bool already_pending = pending_conf_index_ > log_.applied();
      const bool already_joint = tracker_.config().voters.joint();
      const bool wants_leave = ConfChangeLeavesJoint(cc);
      if (already_pending) {
        failed = absl::StrCat("possible unapplied conf change at index ",
                              pending_conf_index_.value(), " (applied to ",
                              log_.applied().value(), ")");
      } else if (already_joint && !wants_leave) {
        failed = "must transition out of joint config first";
      } else if (!already_joint && wants_leave) {
        failed = "not in joint state; refusing empty conf change";
      }
    }
    if (!failed.empty()) {
      logger_->Info(Prefix(), " ignoring conf change ", DescribeEntry(*e), " at config ",
                    tracker_.config().ToString(), ": ", failed);
      // Keep the slot (indexes of later entries stay as proposed).
      *e = Entry();
    } else {
      pending_conf_index_ = log_.LastIndex() + static_cast<uint64_t>(i + 1);
      if (ConfChangeRemovesSelf(cc)) self_removal_index_ = pending_conf_index_;
    }
  }
  if (!AppendEntries(std::move(entries))) {
    return ProposalResult::kDroppedUncommittedLimit;
  }
  // Batching: proposals made before the next Ready share one append per
  // follower (FlushPendingAppends), up to max_size_per_msg.
  bcast_pending_ = true;
  return ProposalResult::kAccepted;
}

ProposalResult Raft::StepLeader(Message& m) {
  switch (m.type()) {
    case MSG_BEAT:
      BcastHeartbeat();
      return ProposalResult::kAccepted;
    case MSG_CHECK_QUORUM:
      if (!tracker_.QuorumActive()) {
        COVERAGE_MARK(check_quorum_step_down);
        logger_->Warning(Prefix(), " stepped down to follower since quorum is not active");
        BecomeFollower(term_, kNoNode);
      }
      for (auto& [id, pr] : tracker_.progress()) {
        if (id != id_) pr.set_recent_active(false);
      }
      return ProposalResult::kAccepted;
    case MSG_PROPOSE:
      return HandlePropose(m);
    case MSG_READ_INDEX:
      return HandleReadIndexAtLeader(m);
    default:
      break;
  }

  const NodeId from(m.from());
  Progress* pr = tracker_.Find(from);
  if (pr == nullptr) {
    logger_->Debug(Prefix(), " no progress available for ", from.value());
    return ProposalResult::kAccepted;
  }
  switch (m.type()) {
    case MSG_APPEND_RESPONSE: {
      pr->set_recent_active(true);
      if (m.reject()) {
        logger_->Debug(Prefix(), " received MsgAppResp(rejected, hint: (index ",
                       m.reject_hint(), ", term ", m.log_term(), ")) from ",
                       from.value(), " for index ", m.index());
        Index next_probe(m.reject_hint());
        if (m.log_term() > 0) {
          // Skip every entry of a term the follower cannot hold.
          next_probe = log_.FindConflictByTerm(Index(m.reject_hint()),
                                               Term(m.log_term())).first;
        }
        if (pr->MaybeDecrTo(Index(m.index()), next_probe)) {
          logger_->Debug(Prefix(), " decreased progress of ", from.value(),
                         " to [", pr->ToString(), "]");
          if (pr->state() == ProgressState::kReplicate) pr->BecomeProbe();
          SendAppend(from);
        }
        return ProposalResult::kAccepted;
      }
      const Index index(m.index());
      if (index > log_.LastIndex()) {
        logger_->Warning(Prefix(), " ignoring ack from ", from.value(),
                         " for index ", index.value(),
                         " beyond our last index ", log_.LastIndex().value());
        return ProposalResult::kAccepted;
      }
      const bool old_paused = pr->IsPaused();
      if (pr->MaybeUpdate(index) ||
          (pr->match() == index && pr->state() == ProgressState::kProbe)) {
        if (pr->state() == ProgressState::kProbe) {
          pr->BecomeReplicate();
        } else if (pr->state() == ProgressState::kSnapshot &&
                   pr->match().Next() >= log_.FirstIndex()) {
          // The follower caught up past our compaction point (through the
          // snapshot or otherwise): resume normal replication.
          logger_->Debug(Prefix(), " recovered from needing snapshot, resumed sending replication messages to ",
                         from.value(), " [", pr->ToString(), "]");
          pr->BecomeProbe();
          pr->BecomeReplicate();
        } else if (pr->state() == ProgressState::kReplicate) {
          pr->inflights().FreeLE(index);
        }
        if (MaybeCommit()) {
          ReleasePendingReadIndexMessages();
          BcastAppend();
        } else if (old_paused && from != id_) {
          SendAppend(from);
        }
        if (from != id_) {
          // Fill the window; bounded by the inflight limit.
          for (size_t i = 0; i <= config_.max_inflight_msgs; ++i) {
            if (!MaybeSendAppend(from, false)) break;
          }
        }
        if (from == lead_transferee_ && pr->match() == log_.LastIndex()) {
          logger_->Info(Prefix(), " sent MsgTimeoutNow to ", from.value(),
                        " after received MsgAppResp");
          SendTimeoutNow(from);
        }
      }
      return ProposalResult::kAccepted;
    }
    case MSG_HEARTBEAT_RESPONSE: {
      pr->set_recent_active(true);
      pr->set_msg_app_flow_paused(false);
      if (pr->match() < log_.LastIndex() || pr->state() == ProgressState::kProbe) {
        SendAppend(from);
      }
      if (read_only_.option() != ReadOnlyOption::kSafe || m.context().empty()) {
        return ProposalResult::kAccepted;
      }
      const std::set<NodeId>* acks = read_only_.RecvAck(from, m.context());
      if (acks == nullptr) return ProposalResult::kAccepted;
      VoteResult vr = tracker_.config().voters.Vote(
          [acks](NodeId id) -> std::optional<bool> {
            if (acks->count(id) > 0) return true;
            return std::nullopt;
          });
      if (vr != VoteResult::kWon) return ProposalResult::kAccepted;
      for (ReadOnly::Pending& p : read_only_.Advance(m.context())) {
        RespondToReadIndex(p.request, p.index);
      }
      return ProposalResult::kAccepted;
    }
    case MSG_SNAPSHOT_STATUS:
      if (pr->state() != ProgressState::kSnapshot) return ProposalResult::kAccepted;
      if (!m.reject()) {
        pr->BecomeProbe();
        logger_->Debug(Prefix(), " snapshot succeeded, resumed sending replication messages to ",
                       from.value(), " [", pr->ToString(), "]");
      } else {
        pr->clear_pending_snapshot();
        pr->BecomeProbe();
        logger_->Debug(Prefix(), " snapshot failed, resumed sending replication messages to ",
                       from.value(), " [", pr->ToString(), "]");
      }
      // Wait for a heartbeat response before probing: the follower may
      // still be applying the snapshot.
      pr->set_msg_app_flow_paused(true);
      return ProposalResult::kAccepted;
    case MSG_UNREACHABLE:
      // Optimistic pipelining to an unreachable peer loses messages.
      if (pr->state() == ProgressState::kReplicate) pr->BecomeProbe();
      logger_->Debug(Prefix(), " failed to send message to ", from.value(),
                     " because it is unreachable [", pr->ToString(), "]");
      return ProposalResult::kAccepted;
    case MSG_TRANSFER_LEADER: {
      if (pr->is_learner()) {
        logger_->Debug(Prefix(), " is learner. Ignored transferring leadership");
        return ProposalResult::kAccepted;
      }
      const NodeId transferee = from;
      if (!lead_transferee_.is_none()) {
        if (lead_transferee_ == transferee) {
          logger_->Info(Prefix(), " [term ", term_.value(),
                        "] transfer leadership to ", transferee.value(),
                        " is in progress, ignores request to same node ",
                        transferee.value());
          return ProposalResult::kAccepted;
        }
        logger_->Info(Prefix(), " [term ", term_.value(),
                      "] abort previous transferring leadership to ",
                      lead_transferee_.value());
        AbortLeaderTransfer();
      }
      if (transferee == id_) {
        logger_->Debug(Prefix(), " is already leader. Ignored transferring leadership to self");
        return ProposalResult::kAccepted;
      }
      logger_->Info(Prefix(), " [term ", term_.value(),
                    "] starts to transfer leadership to ", transferee.value());
      // The transfer must finish within an election timeout (thesis 3.10).
      election_elapsed_ = 0;
      lead_transferee_ = transferee;
      if (pr->match() == log_.LastIndex()) {
        SendTimeoutNow(transferee);
        logger_->Info(Prefix(), " sends MsgTimeoutNow to ", transferee.value(),
                      " immediately as ", transferee.value(),
                      " already has up-to-date log");
      } else {
        SendAppend(transferee);
      }
      return ProposalResult::kAccepted;
    }
    default:
      return ProposalResult::kAccepted;
  }
}

ProposalResult Raft::HandleReadIndexAtLeader(Message& m) {
  // Thesis 6.4: until the leader commits an entry of its term it does not
  // know the commit index; hold the request until then. A lone voter too:
  // after a restart its stored commit index can lag what it had committed
  // (the Host writes commit-only hard states lazily), and answering at it
  // served stale reads (the simulator's read-freshness check, swarm seed
  // 340 of 10 s runs: a one-node cluster after a disk-error crash).
  if (!CommittedEntryInCurrentTerm()) {
    if (pending_read_index_messages_.size() >= kReadIndexWaitingMax) {
      return ProposalResult::kDroppedQueueFull;
    }
    pending_read_index_messages_.push_back(m);
    return ProposalResult::kAccepted;
  }
  if (!tracker_.IsSingleton() && read_only_.option() == ReadOnlyOption::kSafe &&
      read_only_.Full()) {
    return ProposalResult::kDroppedQueueFull;
  }
  SendReadIndexResponse(m);
  return ProposalResult::kAccepted;
}

void Raft::SendReadIndexResponse(Message& m) {
  if (tracker_.IsSingleton()) {
    // The leader alone is the quorum: its commit index is the read index.
    RespondToReadIndex(m, log_.committed());
    return;
  }
  switch (read_only_.option()) {
    case ReadOnlyOption::kSafe: {
      if (!read_only_.AddRequest(log_.committed(), m)) {
        logger_->Debug(Prefix(), " dropped duplicate or overflowing read index request");
        return;
      }
      const std::string& ctx = m.entries(0).data();
      // The leader's own ack; with a single voter that already is a quorum.
      read_only_.RecvAck(id_, ctx);
      BcastHeartbeatWithContext(ctx);
      break;
    }
    case ReadOnlyOption::kLeaseBased:
      RespondToReadIndex(m, log_.committed());
      break;
  }
}

void Raft::RespondToReadIndex(const Message& req, Index index) {
  if (req.from() == 0 || req.from() == id_.value()) {
    read_states_.push_back(ReadState{index, req.entries(0).data()});
    return;
  }
  Message resp;
  resp.set_type(MSG_READ_INDEX_RESPONSE);
  resp.set_to(req.from());
  resp.set_index(index.value());
  *resp.mutable_entries() = req.entries();
  Send(std::move(resp));
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.ZeroTermOnError(log_.committed()) == term_;
}

void Raft::ReleasePendingReadIndexMessages() {
  if (pending_read_index_messages_.empty()) return;
  if (!CommittedEntryInCurrentTerm()) return;
  std::vector<Message> msgs = std::move(pending_read_index_messages_);
  pending_read_index_messages_.clear();
  for (Message& m : msgs) SendReadIndexResponse(m);
}

ProposalResult Raft::StepCandidate(Message& m) {
  // A pre-candidate only counts pre-vote responses, a candidate votes.
  const MessageType my_vote_resp =
      role_ == Role::kPreCandidate ? MSG_PRE_VOTE_RESPONSE : MSG_VOTE_RESPONSE;
  switch (m.type()) {
    case MSG_PROPOSE:
      logger_->Info(Prefix(), " no leader at term ", term_.value(),
                    "; dropping proposal");
      return ProposalResult::kDroppedNoLeader;
    case MSG_READ_INDEX:
      return ProposalResult::kDroppedNoLeader;
    case MSG_TRANSFER_LEADER:
      return ProposalResult::kDroppedNoLeader;
    case MSG_APPEND:
      BecomeFollower(Term(m.term()), NodeId(m.from()));
      HandleAppendEntries(m);
      return ProposalResult::kAccepted;
    case MSG_HEARTBEAT:
      BecomeFollower(Term(m.term()), NodeId(m.from()));
      HandleHeartbeat(m);
      return ProposalResult::kAccepted;
    case MSG_SNAPSHOT:
      BecomeFollower(Term(m.term()), NodeId(m.from()));
      HandleSnapshot(m);
      return ProposalResult::kAccepted;
    case MSG_TIMEOUT_NOW:
      logger_->Debug(Prefix(), " [term ", term_.value(), " state ", RoleName(role_),
                     "] ignored MsgTimeoutNow from ", m.from());
      return ProposalResult::kAccepted;
    default:
      break;
  }
  if (m.type() == my_vote_resp) {
    switch (Poll(NodeId(m.from()), m.type(), !m.reject())) {
      case VoteResult::kWon:
        if (role_ == Role::kPreCandidate) {
          DoCampaign(CampaignType::kElection);
        } else {
          BecomeLeader();
          BcastAppend();
        }
        break;
      case VoteResult::kLost:
        // The election is lost; wait for the winner's heartbeat or our
        // next timeout.
        BecomeFollower(term_, kNoNode);
        break;
      case VoteResult::kPending:
        break;
    }
  }
  return ProposalResult::kAccepted;
}

ProposalResult Raft::StepFollower(Message& m) {
  switch (m.type()) {
    case MSG_PROPOSE:
      if (lead_.is_none()) {
        logger_->Info(Prefix(), " no leader at term ", term_.value(),
                      "; dropping proposal");
        return ProposalResult::kDroppedNoLeader;
      }
      if (config_.disable_proposal_forwarding) {
        logger_->Info(Prefix(), " not forwarding to leader ", lead_.value(),
                      " at term ", term_.value(), "; dropping proposal");
        return ProposalResult::kDroppedForwardingDisabled;
      }
      m.set_to(lead_.value());
      m.set_term(0);
      Send(std::move(m));
      return ProposalResult::kForwarded;
    case MSG_APPEND:
      election_elapsed_ = 0;
      lead_ = NodeId(m.from());
      HandleAppendEntries(m);
      return ProposalResult::kAccepted;
    case MSG_HEARTBEAT:
      election_elapsed_ = 0;
      lead_ = NodeId(m.from());
      HandleHeartbeat(m);
      return ProposalResult::kAccepted;
    case MSG_SNAPSHOT:
      election_elapsed_ = 0;
      lead_ = NodeId(m.from());
      HandleSnapshot(m);
      return ProposalResult::kAccepted;
    case MSG_TRANSFER_LEADER:
      if (lead_.is_none()) {
        logger_->Info(Prefix(), " no leader at term ", term_.value(),
                      "; dropping leader transfer msg");
        return ProposalResult::kDroppedNoLeader;
      }
      m.set_to(lead_.value());
      m.set_term(0);
      Send(std::move(m));
      return ProposalResult::kForwarded;
    case MSG_TIMEOUT_NOW:
      logger_->Info(Prefix(), " [term ", term_.value(),
                    "] received MsgTimeoutNow from ", m.from(),
                    " and starts an election to get leadership");
      // Leadership transfer never uses pre-vote: the leader asked for it.
      Hup(CampaignType::kTransfer);
      return ProposalResult::kAccepted;
    case MSG_READ_INDEX:
      if (lead_.is_none()) {
        logger_->Info(Prefix(), " no leader at term ", term_.value(),
                      "; dropping index reading msg");
        return ProposalResult::kDroppedNoLeader;
      }
      m.set_to(lead_.value());
      m.set_term(0);
      Send(std::move(m));
      return ProposalResult::kForwarded;
    case MSG_READ_INDEX_RESPONSE:
      if (m.entries_size() != 1) {
        logger_->Error(Prefix(), " invalid format of MsgReadIndexResp from ",
                       m.from(), ", entries count: ", m.entries_size());
        return ProposalResult::kAccepted;
      }
      read_states_.push_back(ReadState{Index(m.index()), m.entries(0).data()});
      return ProposalResult::kAccepted;
    default:
      return ProposalResult::kAccepted;
  }
}

void Raft::HandleAppendEntries(Message& m) {
  const Index prev_index(m.index());
  Message resp;
  resp.set_type(MSG_APPEND_RESPONSE);
  resp.set_to(m.from());
  if (prev_index < log_.committed()) {
    // Everything up to our commit matches the leader (Leader Completeness).
    resp.set_index(log_.committed().value());
    Send(std::move(resp));
    return;
  }
  Index last_new;
  switch (log_.MaybeAppend(prev_index, Term(m.log_term()), Index(m.commit()),
                           m.mutable_entries(), &last_new)) {
    case RaftLog::AppendResult::kAppended:
      resp.set_index(last_new.value());
      Send(std::move(resp));
      return;
    case RaftLog::AppendResult::kRefused:
      // Already logged; a leader that contradicts our committed log is
      // broken, so we neither apply nor acknowledge.
      return;
    case RaftLog::AppendResult::kMismatch: {
      // Hint (paper 5.3 optimization): our last index at or below the
      // probe whose term is <= the leader's term there, so the leader skips
      // whole terms.
      const Index hint_index = std::min(prev_index, log_.LastIndex());
      auto [index, term] = log_.FindConflictByTerm(hint_index, Term(m.log_term()));
      logger_->Debug(Prefix(), " [logterm: ", log_.ZeroTermOnError(prev_index).value(),
                     ", index: ", prev_index.value(), "] rejected MsgApp [logterm: ",
                     m.log_term(), ", index: ", prev_index.value(), "] from ",
                     m.from());
      resp.set_index(prev_index.value());
      resp.set_reject(true);
      resp.set_reject_hint(index.value());
      resp.set_log_term(term.value());
      Send(std::move(resp));
      return;
    }
  }
}

void Raft::HandleHeartbeat(const Message& m) {
  const Index commit(m.commit());
  if (commit > log_.LastIndex()) {
    // The leader only sends min(match, commit); a commit beyond our log is a
    // contradiction. Refuse it but still answer (the leader learns we are
    // alive and probes us).
    logger_->Warning(Prefix(), " refusing heartbeat commit ", commit.value(),
                     " beyond last index ", log_.LastIndex().value(), " from ",
                     m.from());
  } else {
    log_.CommitTo(commit);
  }
  Message resp;
  resp.set_type(MSG_HEARTBEAT_RESPONSE);
  resp.set_to(m.from());
  resp.set_context(m.context());
  Send(std::move(resp));
}

void Raft::HandleSnapshot(Message& m) {
  const Index sindex(m.snapshot().metadata().index());
  const Term sterm(m.snapshot().metadata().term());
  Message resp;
  resp.set_type(MSG_APPEND_RESPONSE);
  resp.set_to(m.from());
  if (Restore(m.snapshot())) {
    logger_->Info(Prefix(), " [commit: ", log_.committed().value(),
                  "] restored snapshot [index: ", sindex.value(), ", term: ",
                  sterm.value(), "]");
    resp.set_index(log_.LastIndex().value());
  } else {
    logger_->Info(Prefix(), " [commit: ", log_.committed().value(),
                  "] ignored snapshot [index: ", sindex.value(), ", term: ",
                  sterm.value(), "]");
    resp.set_index(log_.committed().value());
  }
  Send(std::move(resp));
}

bool Raft::Restore(const Snapshot& snapshot) {
  const Index sindex(snapshot.metadata().index());
  const Term sterm(snapshot.metadata().term());
  if (sindex <= log_.committed()) return false;
  if (role_ != Role::kFollower) {
    // Only a follower installs snapshots; become one in a new term so no
    // two leaders can coexist (defense in depth, as etcd-raft).
    logger_->Warning(Prefix(), " attempted to restore snapshot as leader; should never happen");
    BecomeFollower(term_.Next(), kNoNode);
    return false;
  }
  const ConfState& cs = snapshot.metadata().conf_state();
  bool found = false;
  for (uint64_t id : cs.voters()) found |= id == id_.value();
  for (uint64_t id : cs.learners()) found |= id == id_.value();
  for (uint64_t id : cs.voters_outgoing()) found |= id == id_.value();
  if (!found) {
    // The leader counts us as a member, so a conf change after the
    // snapshot adds us (a member added after the leader's last snapshot).
    // Installing it is safe: until that change is applied we are not
    // promotable. Refusing it would leave us unable to ever catch up.
    logger_->Info(Prefix(), " installing snapshot whose ConfState ",
                  DescribeConfState(cs), " does not include us yet");
  }
  if (log_.MatchTerm(sindex, sterm)) {
    // We already hold the snapshot's last entry: just fast-forward commit.
    logger_->Info(Prefix(), " [commit: ", log_.committed().value(),
                  ", lastindex: ", log_.LastIndex().value(), ", lastterm: ",
                  log_.LastTerm().value(), "] fast-forwarded commit to snapshot [index: ",
                  sindex.value(), ", term: ", sterm.value(), "]");
    log_.CommitTo(sindex);
    return false;
  }
  ProgressTracker empty(config_.max_inflight_msgs, config_.max_inflight_bytes);
  absl::StatusOr<ConfigAndProgress> cp = RestoreConfig(empty, sindex, cs);
  if (!cp.ok()) {
    logger_->Error(Prefix(), " refusing snapshot with bad conf state: ",
                   cp.status().ToString());
    return false;
  }
  log_.Restore(snapshot);
  ConfState now = SwitchToConfig(std::move(*cp));
  CHECK(ConfStatesEquivalent(now, cs)) << "restored config differs";
  Progress* self = tracker_.Find(id_);
  if (self != nullptr) self->MaybeUpdate(self->next().Prev());
  return true;
}

ConfState Raft::ApplyConfChange(const ConfChange& cc) {
  Changer changer(tracker_, log_.LastIndex());
  absl::StatusOr<ConfigAndProgress> cp;
  bool auto_leave = false;
  std::vector<ConfChangeSingle> changes(cc.changes().begin(), cc.changes().end());
  if (ConfChangeLeavesJoint(cc)) {
    cp = changer.LeaveJoint();
  } else if (ConfChangeEntersJoint(cc, &auto_leave)) {
    cp = changer.EnterJoint(auto_leave, changes);
  } else {
    cp = changer.Simple(changes);
  }
  if (!cp.ok()) {
    logger_->Error(Prefix(), " ignoring invalid conf change ", DescribeConfChange(cc),
                   ": ", cp.status().ToString());
    return tracker_.GetConfState();
  }
  return SwitchToConfig(std::move(*cp));
}

ConfState Raft::SwitchToConfig(ConfigAndProgress cp) {
  tracker_.config() = std::move(cp.config);
  tracker_.progress() = std::move(cp.progress);
  tracker_.CheckMembership();
  logger_->Info(Prefix(), " switched to configuration ", tracker_.config().ToString());
  ConfState cs = tracker_.GetConfState();
  const Progress* self = tracker_.Find(id_);
  is_learner_ = self != nullptr && self->is_learner();
  if ((self == nullptr || is_learner_) && role_ == Role::kLeader) {
    // A removed or demoted leader cannot count itself; it steps down so a
    // member can take over (thesis 4.2.2) rather than lead a cluster it is
    // not part of.
    if (config_.step_down_on_removal) {
      logger_->Info(Prefix(), " stepping down: no longer a voter");
      BecomeFollower(term_, kNoNode);
    }
    return cs;
  }
  if (role_ != Role::kLeader || cs.voters_size() == 0) return cs;
  // The quorum changed: maybe more is committed now.
  if (MaybeCommit()) {
    BcastAppend();
  } else {
    for (auto& [id, pr] : tracker_.progress()) {
      if (id == id_) continue;
      MaybeSendAppend(id, false);
    }
  }
  if (!lead_transferee_.is_none() &&
      !tracker_.config().voters.contains(lead_transferee_)) {
    logger_->Info(Prefix(), " aborting leadership transfer to removed node ",
                  lead_transferee_.value());
    AbortLeaderTransfer();
  }
  return cs;
}

// ---------------------------------------------------------------------------
// Log helpers.

bool Raft::AppendEntries(std::vector<Entry>&& entries) {
  Index li = log_.LastIndex();
  for (Entry& e : entries) {
    li = li.Next();
    e.set_term(term_.value());
    e.set_index(li.value());
  }
  if (!IncreaseUncommittedSize(entries)) {
    logger_->Warning(Prefix(), " appending new entries to log would exceed uncommitted entry size limit; dropping proposal");
    return false;
  }
  const Index last = log_.Append(std::move(entries));
  // Our own ack: counted once the entries are durable. Consecutive appends
  // share one ack (the later index covers the earlier).
  if (!self_after_persist_.empty()) {
    Message& prev = self_after_persist_.back();
    if (prev.type() == MSG_APPEND_RESPONSE && prev.term() == term_.value()) {
      prev.set_index(last.value());
      return true;
    }
  }
  Message self;
  self.set_type(MSG_APPEND_RESPONSE);
  self.set_to(id_.value());
  self.set_index(last.value());
  Send(std::move(self));
  return true;
}

bool Raft::MaybeCommit() {
  const Index quorum_index = tracker_.Committed();
  if (Planted(PlantedBug::kCommitPreviousTerm) && quorum_index > log_.committed()) {
    // PLANTED BUG kCommitPreviousTerm (core/base/planted_bug.h): commits
    // whatever a quorum holds, whatever its term — the Figure 8 mistake
    // that §5.4.2's current-term rule (log_.MaybeCommit) prevents.
    log_.CommitTo(quorum_index);
    return true;
  }
  return log_.MaybeCommit(quorum_index, term_);
}

bool Raft::IncreaseUncommittedSize(const std::vector<Entry>& entries) {
  uint64_t bytes = 0;
  for (const Entry& e : entries) bytes += PayloadSize(e);
  const uint64_t limit = config_.max_uncommitted_entries_size;
  // A lone proposal is always accepted so a large entry cannot wedge us.
  if (limit != 0 && uncommitted_size_ > 0 && bytes > 0 &&
      uncommitted_size_ + bytes > limit) {
    return false;
  }
  uncommitted_size_ += bytes;
  return true;
}

void Raft::ReduceUncommittedSize(uint64_t bytes) {
  uncommitted_size_ = bytes > uncommitted_size_ ? 0 : uncommitted_size_ - bytes;
}

void Raft::AppliedTo(Index index, uint64_t bytes) {
  const Index old_applied = log_.applied();
  log_.AppliedTo(index);
  if (role_ == Role::kLeader) ReduceUncommittedSize(bytes);
  if (role_ == Role::kLeader && tracker_.config().auto_leave &&
      log_.applied() >= pending_conf_index_ && old_applied < log_.applied() &&
      tracker_.Find(id_) != nullptr) {
    // Thesis 4.3: the joint config was applied; leave it automatically.
    Entry e;
    e.set_type(ENTRY_CONF_CHANGE);
    ConfChange leave;
    leave.SerializeToString(e.mutable_data());
    Message m;
    m.set_type(MSG_PROPOSE);
    m.set_from(id_.value());
    *m.add_entries() = std::move(e);
    ProposalResult r = HandlePropose(m);
    if (r == ProposalResult::kAccepted) {
      logger_->Info(Prefix(), " initiating automatic transition out of joint configuration ",
                    tracker_.config().ToString());
    } else {
      logger_->Debug(Prefix(), " not initiating automatic transition out of joint configuration ",
                     tracker_.config().ToString(), ": ", ProposalResultName(r));
    }
  }
}

void Raft::AppliedSnapshot(Index index) {
  log_.unstable().StableSnapTo(index);
  if (index <= log_.committed()) log_.AppliedTo(index);
}

// ---------------------------------------------------------------------------
// Local requests and ticks.

ProposalResult Raft::Propose(std::vector<Entry>& entries) {
  if (role_ == Role::kLeader) return LeaderPropose(entries);
  Message m;
  m.set_type(MSG_PROPOSE);
  m.set_from(id_.value());
  m.mutable_entries()->Reserve(static_cast<int>(entries.size()));
  for (Entry& e : entries) *m.add_entries() = std::move(e);
  return Step(m);
}

ProposalResult Raft::ReadIndex(std::string context) {
  Message m;
  m.set_type(MSG_READ_INDEX);
  m.set_from(id_.value());
  m.add_entries()->set_data(std::move(context));
  if (role_ == Role::kLeader) {
    // Locally originated: the read state lands in this node's Ready.
    m.set_from(0);
  }
  return Step(m);
}

ProposalResult Raft::TransferLeader(NodeId transferee) {
  Message m;
  m.set_type(MSG_TRANSFER_LEADER);
  m.set_from(transferee.value());
  return Step(m);
}

void Raft::Tick() {
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && PastElectionTimeout()) {
    election_elapsed_ = 0;
    Message m;
    m.set_type(MSG_HUP);
    m.set_from(id_.value());
    Step(m);
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_tick) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      Message m;
      m.set_type(MSG_CHECK_QUORUM);
      m.set_from(id_.value());
      Step(m);
    }
    // A transfer that did not finish within an election timeout is aborted
    // so proposals are accepted again.
    if (role_ == Role::kLeader && !lead_transferee_.is_none()) {
      logger_->Info(Prefix(), " aborting leadership transfer to ",
                    lead_transferee_.value(), " after an election timeout");
      AbortLeaderTransfer();
    }
  }
  if (role_ != Role::kLeader) return;
  if (heartbeat_elapsed_ >= config_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    Message m;
    m.set_type(MSG_BEAT);
    m.set_from(id_.value());
    Step(m);
  }
}

// ---------------------------------------------------------------------------

void Raft::CheckInvariants() const {
  log_.CheckInvariants();
  // Progress is the leader's view of its followers: every role change
  // resets it (Reset), so only a leader's is ever read, and only a leader's
  // is checked (per member, after every simulated event).
  if (role_ == Role::kLeader) {
    tracker_.CheckInvariants();
  } else if (kExpensiveChecks) {
    tracker_.CheckMembership();
  }
  read_only_.CheckInvariants();
  // Once each: this runs after every simulated event.
  const Index last_index = log_.LastIndex();
  const Term last_term = log_.LastTerm();
  CHECK_GE(term_, last_term) << "log holds an entry from a future term";
  CHECK_LE(self_removal_index_, last_index);
  CHECK_GE(randomized_election_timeout_, config_.election_tick);
  CHECK_LT(randomized_election_timeout_, 2 * config_.election_tick);
  switch (role_) {
    case Role::kLeader:
      CHECK_EQ(lead_, id_);
      CHECK_EQ(last_term, term_) << "a leader's last entry is of its term";
      for (const auto& [id, pr] : tracker_.progress()) {
        CHECK_LE(pr.match(), last_index) << "progress of " << id;
      }
      break;
    case Role::kCandidate:
      CHECK_EQ(vote_, id_) << "a candidate votes for itself";
      CHECK(lead_.is_none());
      CHECK(lead_transferee_.is_none());
      break;
    case Role::kPreCandidate:
      CHECK(lead_.is_none());
      CHECK(lead_transferee_.is_none());
      break;
    case Role::kFollower:
      CHECK(lead_transferee_.is_none());
      break;
  }
  if (role_ != Role::kLeader) {
    CHECK(pending_read_index_messages_.empty());
  }
}

}  // namespace blixard::raft
