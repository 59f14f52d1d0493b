// HostObserver: what a Host reports about itself as it runs, for the
// simulator's oracles and trace (sim/) and for production metrics (net/).
// Every call happens on the Host's thread, synchronously, at the moment the
// Host learns or does the thing reported. A Host without an observer uses
// NullObserver. Implementations must not call back into the Host.
#ifndef BLIXARD_CORE_HOST_OBSERVER_H_
#define BLIXARD_CORE_HOST_OBSERVER_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"
#include "core/sm/cluster_state_machine.h"

namespace blixard::host {

// A node's part in Raft as the Host reports it: the core's role, with a
// follower that is a learner in the current configuration told apart.
enum class NodeRole : uint8_t {
  kFollower = 0,
  kPreCandidate = 1,
  kCandidate = 2,
  kLeader = 3,
  kLearner = 4,
};

// "follower", "precandidate", "candidate", "leader", "learner": the names the
// trace and the logs use.
inline absl::string_view NodeRoleName(NodeRole role) {
  switch (role) {
    case NodeRole::kFollower:
      return "follower";
    case NodeRole::kPreCandidate:
      return "precandidate";
    case NodeRole::kCandidate:
      return "candidate";
    case NodeRole::kLeader:
      return "leader";
    case NodeRole::kLearner:
      return "learner";
  }
  return "follower";
}

class HostObserver {
 public:
  virtual ~HostObserver() = default;

  // The node's Raft role, term or known leader changed.
  virtual void OnRole(NodeId node, NodeRole role, Term term, NodeId leader) = 0;
  // The node's log now holds `entries` (not yet durable), replacing anything
  // it held from the first one's index on.
  virtual void OnAppend(NodeId node, const std::vector<raft::Entry>& entries) = 0;
  // The node's log now starts after a snapshot at (index, term);
  // `installed` for a leader's snapshot (the rest of the log is dropped),
  // false for local compaction.
  virtual void OnSnapshot(NodeId node, Index index, Term term,
                          bool installed) = 0;
  // The node's state machine now holds the snapshot at (index, term), whose
  // state digest is `digest`: a leader's snapshot installed once durable,
  // or the snapshot recovered at start-up (reported after OnBoot). The
  // next entry the node applies is index + 1. `digest` is 0 unless
  // WantsDigests().
  virtual void OnSnapshotApplied(NodeId node, Index index, Term term, uint64_t digest) {
    (void)node, (void)index, (void)term, (void)digest;
  }
  // The node (re)started with this durable term and vote (after recovery,
  // before it takes part in Raft).
  virtual void OnBoot(NodeId node, Term term, NodeId vote) = 0;
  // The node restarted and recovered this durable log.
  virtual void OnRecover(NodeId node, Index snapshot_index, Term snapshot_term,
                         const std::vector<raft::Entry>& entries) = 0;
  // The node learned its log is committed up to `commit`.
  virtual void OnCommit(NodeId node, Index commit) = 0;
  // The node applied `entry` to its state machine.
  virtual void OnApply(NodeId node, const raft::Entry& entry) = 0;
  // The state machine right after it applied `command` at `index`.
  virtual void OnStateApplied(NodeId node, Index index, const cluster::Command& command,
                              const ClusterStateMachine& state_machine) = 0;
  // Whether this observer consumes state digests (OnDigest, the digest of
  // OnSnapshotApplied). A digest serializes the whole state, so the Host
  // computes one only for an observer that says yes; others get 0.
  virtual bool WantsDigests() const { return false; }
  // The node's state machine digest at `applied` (reported periodically,
  // only when WantsDigests()).
  virtual void OnDigest(NodeId node, Index applied, uint64_t digest) = 0;
  // The node acknowledged a client write as applied at (index, term).
  virtual void OnAcknowledge(NodeId node, Index index, Term term) = 0;
  // The cluster's member records may have changed (a conf change or a
  // MemberAttributes applied, a snapshot installed, the node booted):
  // `sm` holds them (ClusterStateMachine::members). The production runtime
  // tells its transport where new members listen.
  virtual void OnMembers(NodeId /*node*/, const ClusterStateMachine& /*sm*/) {}
  // The configuration no longer holds the node, as of the conf change at
  // `index` (0: not known): it applied its removal, a peer that applied it
  // said so, or it booted on a removed member's store. The production
  // runtime stops for good; the simulator, which may add the node back
  // under its id, only traces it.
  virtual void OnRemoved(NodeId /*node*/, Index /*index*/) {}
};

// Ignores everything; observers that want a few reports derive from it.
class NullObserver : public HostObserver {
 public:
  void OnRole(NodeId, NodeRole, Term, NodeId) override {}
  void OnAppend(NodeId, const std::vector<raft::Entry>&) override {}
  void OnSnapshot(NodeId, Index, Term, bool) override {}
  void OnBoot(NodeId, Term, NodeId) override {}
  void OnRecover(NodeId, Index, Term, const std::vector<raft::Entry>&) override {}
  void OnCommit(NodeId, Index) override {}
  void OnApply(NodeId, const raft::Entry&) override {}
  void OnStateApplied(NodeId, Index, const cluster::Command&,
                      const ClusterStateMachine&) override {}
  void OnDigest(NodeId, Index, uint64_t) override {}
  void OnAcknowledge(NodeId, Index, Term) override {}
};

}  // namespace blixard::host

#endif  // BLIXARD_CORE_HOST_OBSERVER_H_
