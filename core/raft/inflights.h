// Inflights: the window of append messages sent to one follower and not yet
// acknowledged, limited by count and by payload bytes (flow control in the
// replicate state; etcd-raft's tracker/inflights.go).
//
// Each entry is the last log index a message carried and the payload bytes it
// carried. Acknowledging index i frees every message whose last index <= i.
#ifndef BLIXARD_CORE_RAFT_INFLIGHTS_H_
#define BLIXARD_CORE_RAFT_INFLIGHTS_H_

#include <cstdint>
#include <deque>

#include "core/base/types.h"

namespace blixard::raft {

class Inflights {
 public:
  // REQUIRES: count_max > 0. bytes_max == 0 means no byte limit.
  Inflights(size_t count_max, uint64_t bytes_max);

  // Records a message whose last entry is `index` carrying `bytes`.
  // REQUIRES: !Full(); index greater than the last one added.
  void Add(Index index, uint64_t bytes);
  // Frees every message with last index <= `index`.
  void FreeLE(Index index);
  void Reset();

  // No more messages may be sent: either limit is reached.
  bool Full() const;
  size_t count() const { return entries_.size(); }
  uint64_t bytes() const { return bytes_; }
  size_t count_max() const { return count_max_; }

  // O(1): the window's bounds and ends. The O(window) sum and order walk
  // runs where expensive checks are on (Add and FreeLE keep both by
  // construction, and this runs after every simulated event).
  void CheckInvariants() const;

 private:
  struct Inflight {
    Index index;
    uint64_t bytes;
  };
  size_t count_max_;
  uint64_t bytes_max_;
  uint64_t bytes_ = 0;
  std::deque<Inflight> entries_;
};

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_INFLIGHTS_H_
