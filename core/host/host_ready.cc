// The Host's Ready loop (Raft thesis §10.2.1): persist, release messages in
// the order durability allows, apply, answer, advance. See host.h.
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/host/host.h"
#include "core/host/host_internal.h"

namespace blixard::host {
namespace {

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

}  // namespace

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
        RoleOf(status.role, internal::Contains(conf_state_.learners(), options_.id));
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
      snapshot_sender_.AbortAll();
    }
  }
  if (ready.snapshot.has_value()) {
    last_queued_snapshot_ = Index(ready.snapshot->metadata().index());
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
    const std::optional<uint64_t> id = internal::DecodeReadId(read.request_context);
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
    if (queued_identity_ != store_identity_) {
      write.identity = store_identity_;
      queued_identity_ = store_identity_;
    }
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
    if (message.type() == raft::MSG_SNAPSHOT) {
      // Streamed in chunks; reported to the core when the follower says it
      // is durable, or when the stream stalls (OnSnapshotAck, OnTick).
      std::vector<StreamOut> out;
      logger_->Info("n", options_.id.value(), " streams the snapshot at index ",
                    message.snapshot().metadata().index(), " (",
                    message.snapshot().data().size(), " bytes) to n", to.value());
      if (snapshot_sender_.Start(std::move(message), Now(), &out)) {
        SendStreamOut(std::move(out));
      } else {
        raw_node_->ReportSnapshot(to, false);
      }
      continue;
    }
    const Transport::SendResult result =
        env_.transport->Send(to, std::move(message));
    if (result != Transport::SendResult::kQueued) raw_node_->ReportUnreachable(to);
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
    if (restored_snapshot_.has_value() &&
        restored_snapshot_->index == Index(snapshot.metadata().index()) &&
        restored_snapshot_->term == Term(snapshot.metadata().term())) {
      // Decoded and validated when it arrived (OnSnapshotChunk).
      *sm_ = std::move(*restored_snapshot_->state);
    } else {
      // A snapshot from the leader that does not decode is a bug in a peer
      // or a corrupted transfer; running on with half a state would be worse.
      CHECK_OK(sm_->Restore(snapshot.data()))
          << "installing snapshot at " << snapshot.metadata().index();
    }
    restored_snapshot_.reset();
    if (agent_ != nullptr) agent_->MarkDirty();
    CHECK_OK(storage_.ApplySnapshot(snapshot));
    conf_state_ = snapshot.metadata().conf_state();
    applied_ = Index(snapshot.metadata().index());
    last_snapshot_index_ = applied_;
    CheckJoined(conf_state_, applied_);
    MembersChanged();
    std::vector<StreamOut> out;
    snapshot_receiver_.OnDurable(applied_, &out);
    SendStreamOut(std::move(out));
    observer_->OnSnapshotApplied(options_.id, applied_, Term(snapshot.metadata().term()),
                                 observer_->WantsDigests() ? sm_->Digest() : 0);
  }
  if (!persist.entries.empty()) CHECK_OK(storage_.Append(std::move(persist.entries)));
  if (persist.hard_state.has_value()) storage_.SetHardState(*persist.hard_state);
  if (persist.local_snapshot.has_value()) {
    // Our own snapshot: the core serves it to followers that fell behind the
    // compacted log, and keeps log_retain_entries below it for the others.
    // Its bytes move into the core's storage: the store's write had the
    // only other copy (one serialization, one copy in all).
    const raft::SnapshotMetadata& meta = persist.local_snapshot->metadata();
    const Index index(meta.index());
    if (index > Index(storage_.FirstIndex().value() - 1)) {
      CHECK_OK(storage_.CreateSnapshot(index, &meta.conf_state(),
                                       std::move(*persist.local_snapshot->mutable_data())));
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
  if (agent_ != nullptr) agent_->MarkDirty();
  observer_->OnApply(options_.id, entry);
  if (entry.type() == raft::ENTRY_CONF_CHANGE) {
    ApplyConfChangeEntry(entry);
  } else if (!entry.data().empty()) {
    // An entry that does not decode, or a command the state machine cannot
    // accept, is applied as a deterministic rejection on every replica: a
    // committed entry is there for good, and a CHECK here would crash every
    // node that applies it, on every restart (a poison pill).
    // The state machine's decoding path (size bound, unknown fields
    // dropped) is the one every replica takes.
    cluster::Command command;
    cluster::Result result = sm_->ApplyEntry(index, entry.data(), &command);
    if (command.op_case() == cluster::Command::OP_NOT_SET &&
        result.code() == cluster::RESULT_INVALID_ARGUMENT) {
      logger_->Error("n", options_.id.value(), " rejected committed entry at ", index.value(),
                     ": ", result.message());
    }
    if (command.has_member_joined() || command.has_member_attributes()) MembersChanged();
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
  // The digest serializes the whole state: only for an observer that
  // consumes it.
  if (options_.digest_interval_entries != 0 && observer_->WantsDigests() &&
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


}  // namespace blixard::host
