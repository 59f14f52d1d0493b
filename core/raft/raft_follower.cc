// Raft (raft.h) as follower: the follower's Step (forwarding, leader
// contact) and the handling of AppendEntries, heartbeats and snapshots
// (Raft paper 5.3, thesis 3.5 and 5).
#include "core/raft/raft.h"

#include <algorithm>
#include <utility>

#include "absl/status/statusor.h"
#include "core/base/check.h"
#include "core/raft/confchange.h"
#include "core/raft/util.h"

namespace blixard::raft {

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

}  // namespace blixard::raft
