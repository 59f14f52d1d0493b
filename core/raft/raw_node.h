// RawNode: the public API of the Raft core and its Ready (etcd-raft's
// rawnode.go, with asynchronous storage writes built in: Raft thesis 10.2.1).
//
// The Host drives one RawNode from one thread:
//
//   raw_node->Tick();                       // every tick of its timer
//   raw_node->Step(message_from_network);   // every message received
//   raw_node->Propose(data);                // client commands (leader)
//   while (raw_node->HasReady()) {
//     Ready rd = raw_node->GetReady();
//     // (1) Send rd.messages now (the leader's appends go out while its own
//     //     write is in flight).
//     // (2) Persist rd.snapshot, rd.entries and rd.hard_state as ONE durable
//     //     write (LogStore::Write), queued after earlier Readys' writes.
//     // (3) When that write (and so every earlier one) is durable: copy the
//     //     same snapshot/entries/hard state into the MemoryStorage the core
//     //     reads, restore the state machine from rd.snapshot if present,
//     //     send rd.messages_after_persist, then call
//     //     raw_node->OnPersisted(rd.number). Do this for EVERY Ready, in
//     //     order, even one with nothing to write (it still waits for the
//     //     earlier writes).
//     // (4) Apply rd.committed_entries now, before calling into the RawNode
//     //     again (except ApplyConfChange, which is called while applying a
//     //     conf-change entry); answer rd.read_states once applied up to
//     //     their index.
//   }
//
// The core never hands out for applying an entry that is not durable
// locally, counts the leader's own log toward commitment only up to what
// OnPersisted confirmed, and holds back every message that promises
// durability (vote grants, append acks) until OnPersisted. Entries handed out
// in committed_entries are considered applied at the next call into the
// RawNode.
//
// Restart: build a new RawNode over a Storage holding the recovered hard
// state, snapshot and entries (Config::applied = the state machine's applied
// index). Term and vote come from the hard state, so a node never votes twice
// in a term.
//
// Bootstrap and joining: every member of a new cluster starts over a
// MemoryStorage bootstrapped with the initial membership
// (MemoryStorage::Bootstrap). A node that joins later starts from the same
// bootstrap membership (it then replays every conf change from the log) or
// is brought up by a snapshot from the leader once the log is compacted; a
// node started with an empty membership cannot apply the log's joint
// changes.
//
// Errors: Step returns INVALID_ARGUMENT for malformed or local-only messages
// and NOT_FOUND for a response from a node that is not a member; the message
// is then ignored and the node is unchanged. Expected protocol outcomes (not
// leader, dropped proposal) are ProposalResult values.
#ifndef BLIXARD_CORE_RAFT_RAW_NODE_H_
#define BLIXARD_CORE_RAFT_RAW_NODE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"
#include "core/raft/config.h"
#include "core/raft/raft.h"

namespace blixard::raft {

// Volatile state worth reporting when it changes.
struct SoftState {
  NodeId leader;
  Role role = Role::kFollower;

  friend bool operator==(const SoftState& a, const SoftState& b) {
    return a.leader == b.leader && a.role == b.role;
  }
  friend bool operator!=(const SoftState& a, const SoftState& b) {
    return !(a == b);
  }
};

struct Ready {
  // Increases by one per GetReady(); pass it to OnPersisted().
  uint64_t number = 0;
  std::optional<SoftState> soft_state;  // set when changed
  std::optional<HardState> hard_state;  // set when changed; persist
  std::vector<Entry> entries;           // persist (truncating from entries[0])
  std::optional<Snapshot> snapshot;     // persist; replaces the log
  std::vector<Entry> committed_entries; // apply (all durable locally)
  std::vector<Message> messages;        // send now
  std::vector<Message> messages_after_persist;  // send once durable
  std::vector<ReadState> read_states;

  // True when the Ready carries something to write durably.
  bool MustPersist() const {
    return hard_state.has_value() || !entries.empty() || snapshot.has_value();
  }
};

struct ProgressStatus {
  Index match;
  Index next;
  ProgressState state = ProgressState::kProbe;
  bool recent_active = false;
  bool is_learner = false;
  bool paused = false;
  size_t inflight_count = 0;
};

// The node's own state, O(1) to take (etcd-raft's BasicStatus): what the
// Host reads on every Ready that changes the hard state.
struct BasicStatus {
  NodeId id;
  Role role = Role::kFollower;
  Term term;
  NodeId vote;
  NodeId leader;
  Index commit;
  Index applied;  // handed out for applying
  Index last_index;
  NodeId lead_transferee;
  // A configuration change was proposed and is not applied yet: a leader
  // replaces another proposal by an empty entry (one change at a time).
  bool conf_change_pending = false;
};

// A snapshot of the node's state for operators and tests: BasicStatus plus
// the configuration and, on a leader, every member's progress (copies).
struct Status : BasicStatus {
  ConfState config;
  std::map<NodeId, ProgressStatus> progress;  // leader only
};

// Shape checks of a message from the network (see RawNode::Step).
// INVALID_ARGUMENT, naming the field and its value, for a message the core
// must not read: among others any term (message, log_term, entry, snapshot)
// above kTermMax, any index (index, commit, reject_hint, entry, snapshot)
// above kIndexMax, an append whose entries would pass kIndexMax, and a node
// id (from, snapshot membership) above kNodeIdMax. Such values could not be
// persisted (SQLite INTEGER is signed 64-bit) or would wrap the core's
// term + 1 and index + count.
absl::Status ValidateMessage(const Message& m, NodeId self);

class RawNode {
 public:
  // INVALID_ARGUMENT for a bad config; DATA_LOSS when storage contradicts
  // itself.
  static absl::StatusOr<std::unique_ptr<RawNode>> Create(const Config& config);

  // Advances the logical clock by one tick.
  void Tick();
  // Feeds a message from the network. See the file comment for errors.
  absl::Status Step(const Message& m);
  absl::Status Step(Message&& m);

  // Proposes a command. Accepted only by a leader (or forwarded by a
  // follower); `data` travels as an ENTRY_NORMAL entry.
  ProposalResult Propose(std::string data);
  // Proposes a membership change (ENTRY_CONF_CHANGE). Only one may be
  // pending at a time; a second one is replaced by an empty entry (logged).
  ProposalResult ProposeConfChange(const ConfChange& cc);
  // Linearizable read: a ReadState with `context` appears in a later Ready.
  ProposalResult ReadIndex(std::string context);
  // Asks the leader to hand leadership to `transferee`.
  ProposalResult TransferLeader(NodeId transferee);
  // Starts an election now (no effect on a leader or a non-voter).
  void Campaign();
  // Applies a committed conf-change entry; returns the membership in effect.
  ConfState ApplyConfChange(const ConfChange& cc);
  // The transport could not deliver to `id`.
  void ReportUnreachable(NodeId id);
  // The snapshot transfer to `id` finished (ok) or failed.
  void ReportSnapshot(NodeId id, bool ok);

  Status GetStatus() const;
  BasicStatus GetBasicStatus() const;
  bool HasReady();
  Ready GetReady();
  // The Ready with this number is durable (see the file comment).
  // FAILED_PRECONDITION when it is not the oldest Ready not yet reported.
  absl::Status OnPersisted(uint64_t ready_number);

  void CheckInvariants() const;

  Raft& raft() { return *raft_; }
  const Raft& raft() const { return *raft_; }
  // Readys handed out and not yet reported durable.
  size_t pending_ready_count() const { return pending_.size(); }

 private:
  explicit RawNode(std::unique_ptr<Raft> raft);
  absl::Status StepInternal(Message& m);
  void AdvanceApplied();
  SoftState CurrentSoftState() const {
    return SoftState{raft_->lead(), raft_->role()};
  }

  struct PendingReady {
    uint64_t number = 0;
    Index last_index;  // 0 when no entries
    Term last_term;
    uint64_t unstable_epoch = 0;  // Unstable::epoch() when handed out
    Index snapshot_index;  // 0 when no snapshot
    std::vector<Message> self_messages;
  };

  std::unique_ptr<Raft> raft_;
  uint64_t last_ready_number_ = 0;
  SoftState prev_soft_;
  // The core's term, vote or commit differ from prev_hard_.
  bool HardStateChanged() const;
  HardState prev_hard_;
  std::deque<PendingReady> pending_;
  // Committed entries handed out but not yet marked applied.
  Index applying_index_;
  uint64_t applying_bytes_ = 0;
  // Reused by Propose so a proposal allocates nothing but its entry.
  std::vector<Entry> propose_buffer_;
};

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_RAW_NODE_H_
