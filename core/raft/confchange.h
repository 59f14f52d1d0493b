// Membership changes on a ProgressTracker (Raft thesis 4.1 single-server
// changes, 4.3 joint consensus; etcd-raft's confchange/).
//
// A Changer computes a NEW tracker config and progress map from the current
// ones; nothing is modified in place, so a change that fails validation
// leaves the node untouched. Errors are INVALID_ARGUMENT or
// FAILED_PRECONDITION: a committed but invalid change is ignored the same way
// on every replica, so determinism is kept.
#ifndef BLIXARD_CORE_RAFT_CONFCHANGE_H_
#define BLIXARD_CORE_RAFT_CONFCHANGE_H_

#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"
#include "core/raft/progress.h"

namespace blixard::raft {

struct ConfigAndProgress {
  TrackerConfig config;
  ProgressMap progress;
};

// True when `cc` asks to leave a joint configuration (no changes).
bool ConfChangeLeavesJoint(const ConfChange& cc);
// Whether `cc` enters a joint configuration, and if so whether the joint
// configuration is left automatically.
bool ConfChangeEntersJoint(const ConfChange& cc, bool* auto_leave);

class Changer {
 public:
  // `last_index` seeds the progress of new members.
  Changer(const ProgressTracker& tracker, Index last_index)
      : tracker_(tracker), last_index_(last_index) {}

  // Joint consensus: the current voters become the outgoing half.
  absl::StatusOr<ConfigAndProgress> EnterJoint(
      bool auto_leave, const std::vector<ConfChangeSingle>& changes) const;
  absl::StatusOr<ConfigAndProgress> LeaveJoint() const;
  // A change of at most one voter without joint consensus.
  absl::StatusOr<ConfigAndProgress> Simple(
      const std::vector<ConfChangeSingle>& changes) const;

 private:
  absl::StatusOr<ConfigAndProgress> CheckAndCopy() const;
  absl::Status Apply(ConfigAndProgress& cp,
                     const std::vector<ConfChangeSingle>& changes) const;
  void MakeVoter(ConfigAndProgress& cp, NodeId id) const;
  void MakeLearner(ConfigAndProgress& cp, NodeId id) const;
  void Remove(ConfigAndProgress& cp, NodeId id) const;
  void InitProgress(ConfigAndProgress& cp, NodeId id, bool is_learner) const;

  const ProgressTracker& tracker_;
  Index last_index_;
};

// Rebuilds the configuration described by `cs` starting from an empty
// tracker (used at start-up and when a snapshot is installed).
absl::StatusOr<ConfigAndProgress> RestoreConfig(const ProgressTracker& empty,
                                                Index last_index,
                                                const ConfState& cs);

// Structural checks of a ConfState from an untrusted source.
absl::Status ValidateConfState(const ConfState& cs);

// Same membership, ignoring order.
bool ConfStatesEquivalent(const ConfState& a, const ConfState& b);

absl::Status CheckConfigInvariants(const ConfigAndProgress& cp);

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_CONFCHANGE_H_
