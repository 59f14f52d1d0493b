// Config: everything a Raft node is built with. Every bound the core obeys
// is a field here or a named constant below, checked once by Validate().
#ifndef BLIXARD_CORE_RAFT_CONFIG_H_
#define BLIXARD_CORE_RAFT_CONFIG_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/base/logger.h"
#include "core/base/types.h"
#include "core/raft/read_only.h"
#include "core/raft/storage.h"

namespace blixard::raft {

// Upper bounds on the options, so arithmetic on them cannot overflow and a
// typo (an extra zero) is caught at start-up.
inline constexpr int kElectionTickMax = 1 << 20;
inline constexpr size_t kInflightMsgsMax = 1 << 16;
// Pending ReadIndex requests a leader queues (and a follower forwards
// unboundedly only through the leader's queue).
inline constexpr size_t kReadIndexPendingMax = 4096;
// Pending ReadIndex requests a new leader holds until it commits its first
// entry of the term.
inline constexpr size_t kReadIndexWaitingMax = 4096;
// Entries per proposal (one Propose message).
inline constexpr size_t kProposalEntriesMax = 1 << 16;

struct Config {
  // This node's id. REQUIRES: not kNoNode.
  NodeId id;
  // Ticks without hearing from a leader before a follower campaigns; the
  // actual timeout is drawn from [election_tick, 2*election_tick).
  // REQUIRES: election_tick > heartbeat_tick.
  int election_tick = 10;
  // Ticks between a leader's heartbeats. REQUIRES: > 0.
  int heartbeat_tick = 1;
  // The durable log, read-only to the core. Not owned; must outlive the node.
  const Storage* storage = nullptr;
  // Not owned; must outlive the node. Use NullLogger to discard.
  Logger* logger = nullptr;
  // Seeds the node's Rng (randomized election timeouts): the only randomness.
  uint64_t seed = 0;
  // The last index the application has applied (on restart). Entries up to it
  // are not handed out again. REQUIRES: <= the persisted commit index.
  Index applied;
  // Payload bytes per append message (at least one entry is always sent).
  // REQUIRES: > 0.
  uint64_t max_size_per_msg = 1 << 20;
  // Payload bytes of committed entries per Ready (at least one entry).
  // 0 means no limit.
  uint64_t max_committed_size_per_ready = 0;
  // The leader refuses proposals once this many uncommitted payload bytes
  // are in its log (a lone proposal is always accepted). 0 means no limit.
  uint64_t max_uncommitted_entries_size = 0;
  // Append messages in flight per follower in the replicate state.
  // REQUIRES: 1 <= max_inflight_msgs <= kInflightMsgsMax.
  size_t max_inflight_msgs = 256;
  // Payload bytes in flight per follower. 0 means no limit.
  uint64_t max_inflight_bytes = 0;
  // A leader that has not heard from a quorum within an election timeout
  // steps down; followers also refuse to be disrupted while a leader is live.
  bool check_quorum = false;
  // Raft thesis 9.6: ask for votes without raising the term first.
  bool pre_vote = false;
  // kLeaseBased REQUIRES check_quorum.
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  // Followers drop proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;
  // A leader removed from (or demoted in) the configuration steps down.
  bool step_down_on_removal = true;

  // ValidateConfig, then the pointers: INVALID_ARGUMENT naming the first
  // bad field. Raft::Create calls it.
  absl::Status Validate() const;
};

// Checks every option of `config` except the pointers that exist only once
// a node is built (storage, logger), so a caller can validate a Raft config
// at start-up before opening any storage (HostOptions::Validate).
// INVALID_ARGUMENT naming the first bad field and its value: id 0 or above
// kNodeIdMax, heartbeat_tick <= 0, election_tick <= heartbeat_tick or above
// kElectionTickMax, max_size_per_msg 0, max_inflight_msgs outside
// [1, kInflightMsgsMax], max_inflight_bytes below max_size_per_msg (unless
// 0: no limit), applied above kIndexMax, lease-based reads without
// check_quorum. OK otherwise.
absl::Status ValidateConfig(const Config& config);

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_CONFIG_H_
