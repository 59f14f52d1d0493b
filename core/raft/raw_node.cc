#include "core/raft/raw_node.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"
#include "core/raft/util.h"

namespace blixard::raft {
namespace {

// INVALID_ARGUMENT naming the message type, the field and its value when
// `value` exceeds `max` (named `max_name`); OK otherwise.
absl::Status CheckBound(const Message& m, absl::string_view field, uint64_t value,
                        uint64_t max, absl::string_view max_name) {
  if (value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(MessageTypeName(m.type()), ": ", field,
                                                 " ", value, " exceeds ", max_name, " (", max,
                                                 ")"));
}

// Every 64-bit term, index and node id of `m` the core reads, against the
// limits of core/base/types.h.
absl::Status CheckBounds(const Message& m) {
  RETURN_IF_ERROR(CheckBound(m, "from", m.from(), kNodeIdMax, "kNodeIdMax"));
  RETURN_IF_ERROR(CheckBound(m, "term", m.term(), kTermMax, "kTermMax"));
  RETURN_IF_ERROR(CheckBound(m, "log_term", m.log_term(), kTermMax, "kTermMax"));
  RETURN_IF_ERROR(CheckBound(m, "index", m.index(), kIndexMax, "kIndexMax"));
  RETURN_IF_ERROR(CheckBound(m, "commit", m.commit(), kIndexMax, "kIndexMax"));
  RETURN_IF_ERROR(CheckBound(m, "reject_hint", m.reject_hint(), kIndexMax, "kIndexMax"));
  for (const Entry& e : m.entries()) {
    RETURN_IF_ERROR(CheckBound(m, "entry term", e.term(), kTermMax, "kTermMax"));
    RETURN_IF_ERROR(CheckBound(m, "entry index", e.index(), kIndexMax, "kIndexMax"));
  }
  if (m.has_snapshot()) {
    const SnapshotMetadata& md = m.snapshot().metadata();
    RETURN_IF_ERROR(CheckBound(m, "snapshot index", md.index(), kIndexMax, "kIndexMax"));
    RETURN_IF_ERROR(CheckBound(m, "snapshot term", md.term(), kTermMax, "kTermMax"));
    const ConfState& cs = md.conf_state();
    for (const auto* ids : {&cs.voters(), &cs.learners(), &cs.voters_outgoing(),
                            &cs.learners_next()}) {
      for (uint64_t id : *ids) {
        RETURN_IF_ERROR(CheckBound(m, "snapshot member", id, kNodeIdMax, "kNodeIdMax"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateMessage(const Message& m, NodeId self) {
  if (!MessageType_IsValid(m.type())) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown message type ", static_cast<int>(m.type())));
  }
  if (IsLocalMessage(m.type())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "local message type ", MessageTypeName(m.type()), " from the network"));
  }
  if (m.to() != self.value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("message for ", m.to(), " delivered to ", self.value()));
  }
  if (m.from() == 0) return absl::InvalidArgumentError("message from node 0");
  // A forwarded transfer names the transferee in `from`, which may be us.
  if (m.from() == self.value() && m.type() != MSG_TRANSFER_LEADER) {
    return absl::InvalidArgumentError("message claims to come from ourselves");
  }
  RETURN_IF_ERROR(CheckBounds(m));
  const bool termless = m.type() == MSG_PROPOSE || m.type() == MSG_READ_INDEX;
  if (termless != (m.term() == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        MessageTypeName(m.type()), " with term ", m.term()));
  }
  for (const Entry& e : m.entries()) {
    if (!EntryType_IsValid(e.type())) {
      return absl::InvalidArgumentError("entry of unknown type");
    }
  }
  switch (m.type()) {
    case MSG_APPEND: {
      // index <= kIndexMax (CheckBounds), so neither sum wraps.
      if (static_cast<uint64_t>(m.entries_size()) > kIndexMax - m.index()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "append: ", m.entries_size(), " entries after index ", m.index(),
            " would pass kIndexMax (", kIndexMax, ")"));
      }
      uint64_t expect = m.index() + 1;
      uint64_t prev_term = m.log_term();
      if (m.log_term() > m.term()) {
        return absl::InvalidArgumentError("append: previous term beyond message term");
      }
      for (const Entry& e : m.entries()) {
        if (e.index() != expect) {
          return absl::InvalidArgumentError(absl::StrCat(
              "append: entry index ", e.index(), ", expected ", expect));
        }
        // Raft never writes an entry of term 0 (that is the empty log's
        // dummy); accepting one lets "same index, same term" match entries
        // that were never the same.
        if (e.term() == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("append: entry of term 0 at index ", e.index()));
        }
        if (e.term() < prev_term || e.term() > m.term()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "append: entry term ", e.term(), " out of order at index ", e.index()));
        }
        prev_term = e.term();
        ++expect;
      }
      if (m.index() == 0 && m.log_term() != 0) {
        return absl::InvalidArgumentError("append: index 0 with a term");
      }
      break;
    }
    case MSG_SNAPSHOT:
      if (m.snapshot().metadata().index() == 0) {
        return absl::InvalidArgumentError("snapshot without an index");
      }
      if (m.snapshot().metadata().term() == 0) {
        return absl::InvalidArgumentError("snapshot of term 0");
      }
      if (m.snapshot().metadata().term() > m.term()) {
        return absl::InvalidArgumentError("snapshot from a future term");
      }
      if (m.snapshot().metadata().conf_state().voters_size() == 0) {
        return absl::InvalidArgumentError("snapshot without voters");
      }
      break;
    case MSG_PROPOSE:
      if (m.entries_size() == 0 ||
          static_cast<size_t>(m.entries_size()) > kProposalEntriesMax) {
        return absl::InvalidArgumentError(
            absl::StrCat("proposal with ", m.entries_size(), " entries"));
      }
      break;
    case MSG_READ_INDEX:
    case MSG_READ_INDEX_RESPONSE:
      if (m.entries_size() != 1) {
        return absl::InvalidArgumentError("read index needs exactly one entry");
      }
      break;
    case MSG_VOTE:
    case MSG_PRE_VOTE:
      if (m.log_term() > m.term()) {
        return absl::InvalidArgumentError("vote: last log term beyond message term");
      }
      break;
    default:
      if (m.entries_size() != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            MessageTypeName(m.type()), " must not carry entries"));
      }
      break;
  }
  return absl::OkStatus();
}

RawNode::RawNode(std::unique_ptr<Raft> raft) : raft_(std::move(raft)) {
  prev_soft_ = CurrentSoftState();
  prev_hard_ = raft_->GetHardState();
  applying_index_ = raft_->log().applied();
}

absl::StatusOr<std::unique_ptr<RawNode>> RawNode::Create(const Config& config) {
  ASSIGN_OR_RETURN(std::unique_ptr<Raft> raft, Raft::Create(config));
  return std::unique_ptr<RawNode>(new RawNode(std::move(raft)));
}

void RawNode::AdvanceApplied() {
  if (applying_index_ > raft_->log().applied()) {
    raft_->AppliedTo(applying_index_, applying_bytes_);
  }
  applying_bytes_ = 0;
}

void RawNode::Tick() {
  AdvanceApplied();
  raft_->Tick();
}

absl::Status RawNode::Step(const Message& m) {
  Message copy = m;
  return StepInternal(copy);
}

absl::Status RawNode::Step(Message&& m) { return StepInternal(m); }

absl::Status RawNode::StepInternal(Message& m) {
  absl::Status valid = ValidateMessage(m, raft_->id());
  if (!valid.ok()) {
    raft_->config().logger->Warning(raft_->id().value(), " refused message: ",
                                    valid.message());
    return valid;
  }
  if (IsResponseMessage(m.type()) &&
      raft_->tracker().Find(NodeId(m.from())) == nullptr) {
    return absl::NotFoundError(absl::StrCat("response from non-member ", m.from()));
  }
  AdvanceApplied();
  raft_->Step(m);
  return absl::OkStatus();
}

ProposalResult RawNode::Propose(std::string data) {
  AdvanceApplied();
  propose_buffer_.clear();
  propose_buffer_.emplace_back().set_data(std::move(data));
  return raft_->Propose(propose_buffer_);
}

ProposalResult RawNode::ProposeConfChange(const ConfChange& cc) {
  AdvanceApplied();
  std::vector<Entry> entries(1);
  entries[0].set_type(ENTRY_CONF_CHANGE);
  cc.SerializeToString(entries[0].mutable_data());
  return raft_->Propose(entries);
}

ProposalResult RawNode::ReadIndex(std::string context) {
  AdvanceApplied();
  return raft_->ReadIndex(std::move(context));
}

ProposalResult RawNode::TransferLeader(NodeId transferee) {
  AdvanceApplied();
  return raft_->TransferLeader(transferee);
}

void RawNode::Campaign() {
  AdvanceApplied();
  raft_->Campaign();
}

ConfState RawNode::ApplyConfChange(const ConfChange& cc) {
  return raft_->ApplyConfChange(cc);
}

void RawNode::ReportUnreachable(NodeId id) {
  Message m;
  m.set_type(MSG_UNREACHABLE);
  m.set_from(id.value());
  raft_->Step(m);
}

void RawNode::ReportSnapshot(NodeId id, bool ok) {
  Message m;
  m.set_type(MSG_SNAPSHOT_STATUS);
  m.set_from(id.value());
  m.set_reject(!ok);
  raft_->Step(m);
}

BasicStatus RawNode::GetBasicStatus() const {
  BasicStatus s;
  s.id = raft_->id();
  s.role = raft_->role();
  s.term = raft_->term();
  s.vote = raft_->vote();
  s.leader = raft_->lead();
  s.commit = raft_->log().committed();
  s.applied = std::max(raft_->log().applied(), applying_index_);
  s.last_index = raft_->log().LastIndex();
  s.lead_transferee = raft_->lead_transferee();
  // The same test LeaderPropose applies before accepting a change.
  s.conf_change_pending = raft_->pending_conf_index() > raft_->log().applied();
  return s;
}

Status RawNode::GetStatus() const {
  Status s;
  static_cast<BasicStatus&>(s) = GetBasicStatus();
  s.config = raft_->tracker().GetConfState();
  if (raft_->role() == Role::kLeader) {
    for (const auto& [id, pr] : raft_->tracker().progress()) {
      ProgressStatus ps;
      ps.match = pr.match();
      ps.next = pr.next();
      ps.state = pr.state();
      ps.recent_active = pr.recent_active();
      ps.is_learner = pr.is_learner();
      ps.paused = pr.IsPaused();
      ps.inflight_count = pr.inflights().count();
      s.progress.emplace(id, ps);
    }
  }
  return s;
}

bool RawNode::HasReady() {
  AdvanceApplied();
  raft_->FlushPendingAppends();
  const RaftLog& log = raft_->log();
  return CurrentSoftState() != prev_soft_ ||
         HardStateChanged() ||
         log.HasNextUnstableEntries() || log.unstable().NextSnapshot() != nullptr ||
         log.HasNextCommittedEntries() || !raft_->msgs().empty() ||
         !raft_->msgs_after_persist().empty() ||
         !raft_->self_after_persist().empty() || !raft_->read_states().empty();
}

bool RawNode::HardStateChanged() const {
  // Field by field: HasReady runs several times per event, and building a
  // HardState message to compare costs a protobuf construction and
  // destruction each time.
  return raft_->term().value() != prev_hard_.term() ||
         raft_->vote().value() != prev_hard_.vote() ||
         raft_->log().committed().value() != prev_hard_.commit();
}

Ready RawNode::GetReady() {
  AdvanceApplied();
  raft_->FlushPendingAppends();
  Ready rd;
  rd.number = ++last_ready_number_;
  const SoftState soft = CurrentSoftState();
  if (soft != prev_soft_) {
    rd.soft_state = soft;
    prev_soft_ = soft;
  }
  if (HardStateChanged()) {
    prev_hard_ = raft_->GetHardState();
    rd.hard_state = prev_hard_;
  }
  RaftLog& log = raft_->log();
  log.unstable().NextEntries(&rd.entries);
  if (const Snapshot* snap = log.unstable().NextSnapshot()) rd.snapshot = *snap;
  const uint64_t limit = raft_->config().max_committed_size_per_ready;
  rd.committed_entries = log.NextCommittedEntries(limit == 0 ? kNoLimit : limit);
  if (!rd.committed_entries.empty()) {
    applying_index_ = Index(rd.committed_entries.back().index());
    log.SetApplying(applying_index_);
    for (const Entry& e : rd.committed_entries) applying_bytes_ += PayloadSize(e);
  }
  rd.messages = std::move(raft_->msgs());
  raft_->msgs().clear();
  rd.messages_after_persist = std::move(raft_->msgs_after_persist());
  raft_->msgs_after_persist().clear();
  rd.read_states = std::move(raft_->read_states());
  raft_->read_states().clear();

  PendingReady pending;
  pending.number = rd.number;
  if (!rd.entries.empty()) {
    pending.last_index = Index(rd.entries.back().index());
    pending.last_term = Term(rd.entries.back().term());
  }
  pending.unstable_epoch = log.unstable().epoch();
  if (rd.snapshot) pending.snapshot_index = Index(rd.snapshot->metadata().index());
  pending.self_messages = std::move(raft_->self_after_persist());
  raft_->self_after_persist().clear();
  log.unstable().AcceptInProgress();
  pending_.push_back(std::move(pending));
  return rd;
}

absl::Status RawNode::OnPersisted(uint64_t ready_number) {
  if (pending_.empty() || pending_.front().number != ready_number) {
    return absl::FailedPreconditionError(absl::StrCat(
        "OnPersisted(", ready_number, ") out of order; oldest pending is ",
        pending_.empty() ? 0 : pending_.front().number));
  }
  PendingReady done = std::move(pending_.front());
  pending_.pop_front();
  AdvanceApplied();
  if (done.snapshot_index > Index(0)) raft_->AppliedSnapshot(done.snapshot_index);
  if (done.last_index > Index(0)) {
    raft_->log().unstable().StableTo(done.last_index, done.last_term, done.unstable_epoch);
  }
  for (Message& m : done.self_messages) raft_->Step(m);
  return absl::OkStatus();
}

void RawNode::CheckInvariants() const {
  raft_->CheckInvariants();
  CHECK_LE(applying_index_, raft_->log().committed());
  for (size_t i = 1; i < pending_.size(); ++i) {
    CHECK_EQ(pending_[i].number, pending_[i - 1].number + 1);
  }
}

}  // namespace blixard::raft
