// Raft (raft.h) as leader: sending appends, snapshots and heartbeats,
// proposals, the leader's Step (acks, rejections with hints, snapshot
// status, leadership transfer) and ReadIndex (Raft paper 5.3, thesis 3.10
// and 6.4).
#include "core/raft/raft.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/coverage_mark.h"
#include "core/raft/confchange.h"
#include "core/raft/util.h"

namespace blixard::raft {

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
// Leader.

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
  if (entries.size() > kIndexMax - log_.LastIndex().value()) {
    logger_->Error(Prefix(), " dropping proposal of ", entries.size(), " entries after index ",
                   log_.LastIndex().value(), ": it would pass kIndexMax");
    return ProposalResult::kDroppedIndexLimit;
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

}  // namespace blixard::raft
