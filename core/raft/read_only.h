// ReadOnly: the leader's queue of pending ReadIndex requests (Raft thesis
// 6.4; etcd-raft's read_only.go).
//
// Safe mode: a request records the commit index when it arrived, is
// broadcast as a heartbeat context, and is answered once a quorum has acked
// that context, which proves the leader was still the leader at arrival.
// Lease mode answers at once, trusting check-quorum's lease (so Config
// requires check_quorum with it).
//
// Requests are answered in arrival order; acking a later request answers
// every earlier one too. Contexts are the request ids; a duplicate context
// is ignored. Lookups use a hash map, but order only ever comes from the
// queue, so iteration order never drives a decision.
#ifndef BLIXARD_CORE_RAFT_READ_ONLY_H_
#define BLIXARD_CORE_RAFT_READ_ONLY_H_

#include <deque>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"

namespace blixard::raft {

enum class ReadOnlyOption { kSafe, kLeaseBased };

// A read the application may serve once it has applied up to `index`.
struct ReadState {
  Index index;
  std::string request_context;
};

class ReadOnly {
 public:
  struct Pending {
    Message request;  // the original MSG_READ_INDEX (entries[0] = context)
    Index index;      // commit index at arrival
    std::set<NodeId> acks;
  };

  ReadOnly(ReadOnlyOption option, size_t pending_max)
      : option_(option), pending_max_(pending_max) {}

  ReadOnlyOption option() const { return option_; }
  size_t pending_count() const { return queue_.size(); }
  bool Full() const { return queue_.size() >= pending_max_; }

  // Adds a request; false when it was a duplicate or the queue is full.
  bool AddRequest(Index index, const Message& request);
  // Records that `from` acked `context`; returns the acks so far (nullptr if
  // the context is unknown).
  const std::set<NodeId>* RecvAck(NodeId from, const std::string& context);
  // Pops and returns every request up to and including `context`.
  std::vector<Pending> Advance(const std::string& context);
  // The newest pending context ("" when none).
  std::string LastPendingRequestContext() const;

  void CheckInvariants() const;

 private:
  ReadOnlyOption option_;
  size_t pending_max_;
  absl::flat_hash_map<std::string, Pending> pending_;
  std::deque<std::string> queue_;
};

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_READ_ONLY_H_
