// Raft: the consensus state machine of one node (Raft paper section 5,
// Raft thesis chapters 3, 4, 6, 9; etcd-raft's raft.go).
//
// Driven only by Tick() and Step(); it never blocks, reads no clock and does
// no I/O. Outputs accumulate in buffers that the RawNode drains into a Ready:
//   msgs()                 messages that may be sent at once;
//   msgs_after_persist()   responses that promise durability (append acks,
//                          vote grants): sent only after the Ready's write;
//   self_after_persist()   the node's own acks (its vote for itself, its own
//                          append): stepped by the RawNode once the write is
//                          durable, so a leader never counts an entry it has
//                          not persisted and a candidate never counts a vote
//                          it could forget in a crash;
//   read_states()          answered ReadIndex requests.
//
// Untrusted input: Step() assumes RawNode::Step validated the message's shape
// (ValidateMessage); contradictions that need state to detect (an append
// that would overwrite a committed entry, a commit beyond our log) are
// refused here and logged, never CHECKed.
//
// Not thread-safe. Deterministic given the Config's seed and the inputs.
#ifndef BLIXARD_CORE_RAFT_RAFT_H_
#define BLIXARD_CORE_RAFT_RAFT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/logger.h"
#include "core/base/rng.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"
#include "core/raft/config.h"
#include "core/raft/confchange.h"
#include "core/raft/log.h"
#include "core/raft/progress.h"
#include "core/raft/read_only.h"

namespace blixard::raft {

enum class Role { kFollower, kCandidate, kPreCandidate, kLeader };
const char* RoleName(Role role);

// The outcome of a local request. Not errors: the caller retries elsewhere
// or later (Abseil-style errors are kept for malformed input).
enum class ProposalResult {
  kAccepted,                   // appended to the leader's log / queued
  kForwarded,                  // sent to the leader
  kDroppedNoLeader,            // no known leader to forward to
  kDroppedForwardingDisabled,  // follower with forwarding disabled
  kDroppedTransferring,        // a leadership transfer is in progress
  kDroppedUncommittedLimit,    // max_uncommitted_entries_size reached
  kDroppedNotMember,           // this leader was removed from the config
  kDroppedQueueFull,           // the ReadIndex queue is full
  kDroppedIndexLimit,          // the entries would pass kIndexMax
};
const char* ProposalResultName(ProposalResult result);
inline bool IsAccepted(ProposalResult r) {
  return r == ProposalResult::kAccepted || r == ProposalResult::kForwarded;
}

// Context of a vote request that comes from a leadership transfer: it
// bypasses leader stickiness and pre-vote (thesis 3.10).
inline constexpr char kCampaignTransferContext[] = "CampaignTransfer";

class Raft {
 public:
  // Builds a node from the config and the state in config.storage.
  // INVALID_ARGUMENT for a bad config, DATA_LOSS when storage contradicts
  // itself (commit beyond the log, malformed conf state).
  static absl::StatusOr<std::unique_ptr<Raft>> Create(const Config& config);

  // Input. `m` may be consumed (entries are moved out).
  // Returns the outcome for proposals and reads; kAccepted otherwise.
  ProposalResult Step(Message& m);
  void Tick();

  // Proposes entries (moved out of `entries`; the vector keeps its capacity
  // so a caller can reuse it).
  ProposalResult Propose(std::vector<Entry>& entries);
  ProposalResult ReadIndex(std::string context);
  ProposalResult TransferLeader(NodeId transferee);
  // Starts an election (pre-vote first when configured). Refused with a log
  // line, changing nothing, at kTermMax (there is no next term) or with an
  // entry at kIndexMax (a leader could not append its first entry).
  void Campaign();
  // Applies a committed conf change; returns the membership now in effect.
  // An invalid change is logged and ignored (the same way on every replica).
  ConfState ApplyConfChange(const ConfChange& cc);
  // The application has applied entries up to `index`, whose payload was
  // `bytes` (released from the uncommitted-size budget).
  void AppliedTo(Index index, uint64_t bytes);
  // A snapshot handed out in a Ready is durable and applied.
  void AppliedSnapshot(Index index);

  // State.
  NodeId id() const { return id_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId lead() const { return lead_; }
  Role role() const { return role_; }
  NodeId lead_transferee() const { return lead_transferee_; }
  bool is_learner() const { return is_learner_; }
  HardState GetHardState() const;
  RaftLog& log() { return log_; }
  const RaftLog& log() const { return log_; }
  const ProgressTracker& tracker() const { return tracker_; }
  ProgressTracker& tracker() { return tracker_; }
  uint64_t uncommitted_size() const { return uncommitted_size_; }
  int election_elapsed() const { return election_elapsed_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  Index pending_conf_index() const { return pending_conf_index_; }
  Index self_removal_index() const { return self_removal_index_; }
  const Config& config() const { return config_; }

  // Output buffers (drained by the RawNode).
  std::vector<Message>& msgs() { return msgs_; }
  std::vector<Message>& msgs_after_persist() { return msgs_after_persist_; }
  std::vector<Message>& self_after_persist() { return self_after_persist_; }
  std::vector<ReadState>& read_states() { return read_states_; }

  // Sends the appends that proposals since the last call made necessary.
  // The RawNode calls it before building a Ready.
  void FlushPendingAppends();
  bool has_pending_appends() const { return bcast_pending_; }

  // Tests only: campaign-like transitions without messages.
  void BecomeFollower(Term term, NodeId lead);
  void BecomeCandidate();
  void BecomePreCandidate();
  void BecomeLeader();

  void CheckInvariants() const;

 private:
  explicit Raft(const Config& config);
  absl::Status Init();

  enum class CampaignType { kPreElection, kElection, kTransfer };

  ProposalResult StepLeader(Message& m);
  ProposalResult StepCandidate(Message& m);
  ProposalResult StepFollower(Message& m);
  ProposalResult HandlePropose(Message& m);
  ProposalResult LeaderPropose(std::vector<Entry>& entries);
  // Whether applying `cc` to the current config would leave this node out
  // of the incoming voters (removed or demoted).
  bool ConfChangeRemovesSelf(const ConfChange& cc) const;
  ProposalResult HandleReadIndexAtLeader(Message& m);

  void TickElection();
  void TickHeartbeat();
  bool Promotable() const;
  bool PastElectionTimeout() const {
    return election_elapsed_ >= randomized_election_timeout_;
  }
  void ResetRandomizedElectionTimeout();
  void Reset(Term term);
  void Hup(CampaignType type);
  void DoCampaign(CampaignType type);
  VoteResult Poll(NodeId id, MessageType type, bool granted);
  // A conf-change entry above the applied index (for a coverage mark only).
  bool HasUnappliedConfChange() const;

  // Takes the message over (callers move it in: no copy, no extra move).
  void Send(Message&& m);
  void SendAppend(NodeId to) { MaybeSendAppend(to, true); }
  bool MaybeSendAppend(NodeId to, bool send_if_empty);
  bool MaybeSendSnapshot(NodeId to, Progress& pr);
  void SendHeartbeat(NodeId to, const std::string& context);
  void BcastAppend();
  void BcastHeartbeat();
  void BcastHeartbeatWithContext(const std::string& context);
  void SendTimeoutNow(NodeId to);
  void AbortLeaderTransfer() { lead_transferee_ = kNoNode; }

  bool AppendEntries(std::vector<Entry>&& entries);
  bool MaybeCommit();
  bool IncreaseUncommittedSize(const std::vector<Entry>& entries);
  void ReduceUncommittedSize(uint64_t bytes);
  bool CommittedEntryInCurrentTerm() const;
  void ReleasePendingReadIndexMessages();
  void SendReadIndexResponse(Message& m);
  void RespondToReadIndex(const Message& req, Index index);

  void HandleAppendEntries(Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(Message& m);
  bool Restore(const Snapshot& snapshot);
  ConfState SwitchToConfig(ConfigAndProgress cp);

  std::string Prefix() const;

  Config config_;
  NodeId id_;
  Logger* logger_;
  Rng rng_;
  Term term_;
  NodeId vote_;
  NodeId lead_;
  Role role_ = Role::kFollower;
  bool is_learner_ = false;
  RaftLog log_;
  ProgressTracker tracker_;
  ReadOnly read_only_;
  NodeId lead_transferee_;
  // Conf changes up to this index may still be unapplied; only one at a time.
  Index pending_conf_index_;
  // Index of an unapplied conf change that takes this leader out of the
  // voters (0: none). Until it is applied the leader appends no normal
  // entries, so when it steps down its log ends at that change: the voters
  // that remain, which hold every committed entry, are then never less up
  // to date than it. Otherwise a removed leader with a longer uncommitted
  // tail refuses every vote a remaining voter asks for while that voter,
  // not yet knowing the removal committed, still needs it (2 voters -> 1:
  // no leader ever again; found by swarm seed 467).
  Index self_removal_index_;
  uint64_t uncommitted_size_ = 0;
  bool bcast_pending_ = false;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  std::vector<Message> pending_read_index_messages_;

  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<Message> self_after_persist_;
  std::vector<ReadState> read_states_;
};

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_RAFT_H_
