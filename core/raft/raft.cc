// Raft (raft.h): construction, the Step dispatch (terms and votes), log
// helpers, local requests, ticks and the invariants. The roles live in
// raft_election.cc, raft_leader.cc and raft_follower.cc, membership in
// raft_config.cc: one file per concept, as etcd-raft splits raft.go.
#include "core/raft/raft.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
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
    case ProposalResult::kDroppedIndexLimit: return "dropped: log index limit";
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
  // ValidateMessage and the campaign / proposal guards keep both in range.
  CHECK_LE(term_.value(), kTermMax);
  CHECK_LE(last_index.value(), kIndexMax);
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
