// Progress: the leader's view of one follower (Raft paper Figure 2's
// nextIndex/matchIndex, plus flow control), and the ProgressTracker: the
// configuration in effect with one Progress per member, votes, and the quorum
// questions asked of them (etcd-raft's tracker/).
//
// A Progress is in one of three states:
//   probe      one append per heartbeat interval until the follower's log
//              position is known (after a rejection or on election);
//   replicate  optimistic pipelining: `next` advances as appends are sent,
//              bounded by the Inflights window;
//   snapshot   the follower needs entries the leader compacted; nothing is
//              sent until the snapshot transfer is reported.
#ifndef BLIXARD_CORE_RAFT_PROGRESS_H_
#define BLIXARD_CORE_RAFT_PROGRESS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/base/types.h"
#include "core/proto/raft.pb.h"
#include "core/raft/inflights.h"
#include "core/raft/quorum.h"

namespace blixard::raft {

enum class ProgressState { kProbe, kReplicate, kSnapshot };
const char* ProgressStateName(ProgressState state);

class Progress {
 public:
  Progress(Index match, Index next, size_t inflight_count_max,
           uint64_t inflight_bytes_max, bool is_learner);

  Index match() const { return match_; }
  Index next() const { return next_; }
  ProgressState state() const { return state_; }
  Index pending_snapshot() const { return pending_snapshot_; }
  bool recent_active() const { return recent_active_; }
  bool is_learner() const { return is_learner_; }
  bool msg_app_flow_paused() const { return msg_app_flow_paused_; }
  const Inflights& inflights() const { return inflights_; }
  Inflights& inflights() { return inflights_; }

  void set_recent_active(bool active) { recent_active_ = active; }
  void set_is_learner(bool learner) { is_learner_ = learner; }
  void set_msg_app_flow_paused(bool paused) { msg_app_flow_paused_ = paused; }
  // Only for the leader's own entry and for tests.
  void set_match(Index match) { match_ = match; }
  void clear_pending_snapshot() { pending_snapshot_ = Index(0); }

  void BecomeProbe();
  void BecomeReplicate();
  // REQUIRES: snapshot_index > 0.
  void BecomeSnapshot(Index snapshot_index);

  // Accounts for an append of `count` entries and `bytes` payload bytes
  // that was just sent starting at next().
  void SentEntries(uint64_t count, uint64_t bytes);
  // The follower acknowledged everything up to `index`. Returns true when
  // match advanced. A stale (lower) ack changes nothing.
  bool MaybeUpdate(Index index);
  // The follower rejected an append whose previous index was `rejected`;
  // `match_hint` is where its log might match. Returns false when the
  // rejection is stale (the leader already moved on).
  bool MaybeDecrTo(Index rejected, Index match_hint);
  // No append may be sent now (flow control).
  bool IsPaused() const;

  std::string ToString() const;
  void CheckInvariants() const;

 private:
  void ResetState(ProgressState state);

  Index match_;
  Index next_;
  ProgressState state_ = ProgressState::kProbe;
  Index pending_snapshot_;
  bool recent_active_ = false;
  // Probe: one message is outstanding. Replicate: the window is full.
  bool msg_app_flow_paused_ = false;
  bool is_learner_ = false;
  Inflights inflights_;
};

// The membership: voters (possibly joint), learners, and learners_next
// (voters demoted by a joint change, learners once the joint config is left).
struct TrackerConfig {
  JointConfig voters;
  std::set<NodeId> learners;
  std::set<NodeId> learners_next;
  bool auto_leave = false;

  std::string ToString() const;
};

using ProgressMap = std::map<NodeId, Progress>;

class ProgressTracker {
 public:
  ProgressTracker(size_t inflight_count_max, uint64_t inflight_bytes_max);

  TrackerConfig& config() { return config_; }
  const TrackerConfig& config() const { return config_; }
  ProgressMap& progress() { return progress_; }
  const ProgressMap& progress() const { return progress_; }
  Progress* Find(NodeId id);
  const Progress* Find(NodeId id) const;

  size_t inflight_count_max() const { return inflight_count_max_; }
  uint64_t inflight_bytes_max() const { return inflight_bytes_max_; }

  ConfState GetConfState() const;
  bool IsSingleton() const;
  // The largest index a (joint) quorum of voters has matched.
  Index Committed() const;
  // True when a quorum of voters was recently active (check-quorum).
  bool QuorumActive() const;
  // Sorted ids of voters in either half.
  std::vector<NodeId> VoterIds() const { return config_.voters.ids(); }

  void ResetVotes() { votes_.clear(); }
  void RecordVote(NodeId id, bool granted);
  struct Tally {
    size_t granted = 0;
    size_t rejected = 0;
    VoteResult result = VoteResult::kPending;
  };
  Tally TallyVotes() const;

  // Per-member checks, O(members). The membership cross-check (every voter
  // and learner has a progress and nothing else does) is CheckMembership();
  // it runs here only where expensive checks are on, because membership
  // changes only where config() is assigned, and those places call it.
  void CheckInvariants() const;
  void CheckMembership() const;

 private:
  size_t inflight_count_max_;
  uint64_t inflight_bytes_max_;
  TrackerConfig config_;
  ProgressMap progress_;
  std::map<NodeId, bool> votes_;
};

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_PROGRESS_H_
