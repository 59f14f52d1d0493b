// Raft (raft.h) elections: role transitions, campaigns with and without
// pre-vote, vote counting, and the candidate's Step (Raft paper 5.2,
// thesis 3.4 and 9.6).
#include "core/raft/raft.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/check.h"
#include "core/base/coverage_mark.h"
#include "core/raft/util.h"

namespace blixard::raft {

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
  // The limits of core/base/types.h: a campaign needs term + 1, and a
  // winner appends an entry. Reaching either takes a peer at the limit
  // (2^63 terms or entries do not happen otherwise), so refusing for good
  // is the answer; crashing would not be.
  if (term_.value() >= kTermMax) {
    logger_->Error(Prefix(), " cannot campaign: term ", term_.value(),
                   " is the maximum term (kTermMax)");
    return;
  }
  if (log_.LastIndex().value() >= kIndexMax) {
    logger_->Error(Prefix(), " cannot campaign: last index ", log_.LastIndex().value(),
                   " is the maximum index (kIndexMax)");
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
// Candidate.

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

}  // namespace blixard::raft
