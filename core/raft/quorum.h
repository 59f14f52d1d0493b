// Quorum arithmetic as pure functions (Raft paper 5.2, 5.3; Raft thesis 4.3).
//
// A MajorityConfig is a set of voters; a decision needs more than half of
// them. A JointConfig is the pair (incoming, outgoing) used during joint
// consensus: a decision needs a majority of BOTH halves. An empty outgoing
// half means "not joint" and agrees with everything.
//
// The functions take a lookup callback so the caller (the ProgressTracker)
// can answer from whatever it stores; they allocate nothing for clusters of
// up to kInlineVoters voters. Deterministic: voters are kept sorted.
#ifndef BLIXARD_CORE_RAFT_QUORUM_H_
#define BLIXARD_CORE_RAFT_QUORUM_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "core/base/types.h"

namespace blixard::raft {

enum class VoteResult { kPending, kLost, kWon };

// Voter counts up to this many never allocate while counting.
inline constexpr size_t kInlineVoters = 8;

class MajorityConfig {
 public:
  MajorityConfig() = default;
  // Sorts and removes duplicates.
  explicit MajorityConfig(std::vector<NodeId> ids);

  const std::vector<NodeId>& ids() const { return ids_; }
  size_t size() const { return ids_.size(); }
  bool empty() const { return ids_.empty(); }
  bool contains(NodeId id) const {
    return std::binary_search(ids_.begin(), ids_.end(), id);
  }
  void Insert(NodeId id);
  void Erase(NodeId id);
  std::string ToString() const;

  // The largest index that a majority has acknowledged. `acked(id)` returns
  // the acknowledged index of a voter (Index(0) if unknown). An empty config
  // returns the maximum index so that it never holds back a joint config.
  template <typename AckedFn>
  Index CommittedIndex(const AckedFn& acked) const {
    if (ids_.empty()) return Index(std::numeric_limits<uint64_t>::max());
    absl::InlinedVector<uint64_t, kInlineVoters> indexes;
    indexes.reserve(ids_.size());
    for (NodeId id : ids_) indexes.push_back(acked(id).value());
    // Sort descending; the (n/2+1)-th largest is acked by a majority.
    std::sort(indexes.begin(), indexes.end(), std::greater<uint64_t>());
    return Index(indexes[ids_.size() / 2]);
  }

  // The outcome of an election given `vote(id)`: std::nullopt (not voted),
  // true (granted) or false (rejected). An empty config wins (see above).
  template <typename VoteFn>
  VoteResult Vote(const VoteFn& vote) const {
    if (ids_.empty()) return VoteResult::kWon;
    size_t granted = 0;
    size_t missing = 0;
    for (NodeId id : ids_) {
      std::optional<bool> v = vote(id);
      if (!v.has_value()) {
        ++missing;
      } else if (*v) {
        ++granted;
      }
    }
    const size_t quorum = ids_.size() / 2 + 1;
    if (granted >= quorum) return VoteResult::kWon;
    if (granted + missing >= quorum) return VoteResult::kPending;
    return VoteResult::kLost;
  }

  void CheckInvariants() const;

 private:
  std::vector<NodeId> ids_;  // sorted, unique
};

class JointConfig {
 public:
  MajorityConfig& incoming() { return incoming_; }
  const MajorityConfig& incoming() const { return incoming_; }
  MajorityConfig& outgoing() { return outgoing_; }
  const MajorityConfig& outgoing() const { return outgoing_; }

  bool joint() const { return !outgoing_.empty(); }
  bool contains(NodeId id) const {
    return incoming_.contains(id) || outgoing_.contains(id);
  }
  // Union of both halves, sorted.
  std::vector<NodeId> ids() const;
  std::string ToString() const;

  template <typename AckedFn>
  Index CommittedIndex(const AckedFn& acked) const {
    return std::min(incoming_.CommittedIndex(acked),
                    outgoing_.CommittedIndex(acked));
  }

  template <typename VoteFn>
  VoteResult Vote(const VoteFn& vote) const {
    VoteResult r1 = incoming_.Vote(vote);
    VoteResult r2 = outgoing_.Vote(vote);
    if (r1 == r2) return r1;
    if (r1 == VoteResult::kLost || r2 == VoteResult::kLost) {
      return VoteResult::kLost;
    }
    return VoteResult::kPending;
  }

  void CheckInvariants() const {
    incoming_.CheckInvariants();
    outgoing_.CheckInvariants();
  }

 private:
  MajorityConfig incoming_;
  MajorityConfig outgoing_;
};

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_QUORUM_H_
