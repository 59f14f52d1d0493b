// The checks a careful operator makes before changing the membership
// (etcd's strict reconfiguration check), in one place for the Host's
// client path (`blixard member ...`) and the simulator's membership faults.
#ifndef BLIXARD_CORE_HOST_MEMBERSHIP_H_
#define BLIXARD_CORE_HOST_MEMBERSHIP_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/base/types.h"
#include "core/raft/raw_node.h"

namespace blixard::host {

// A learner is promoted only when its log is within this many entries of
// the leader's commit index (etcd refuses a learner that is not "ready"),
// so that promoting it does not stall commits while it catches up.
inline constexpr uint64_t kPromoteLagEntriesMax = 64;

enum class MemberChangeKind : uint8_t { kAddLearner, kPromote, kRemove };

// Whether the leader whose core reports `status` may make the change now:
// one change at a time and none from a joint configuration; a learner is
// added only for a node that is not a member, promoted only once caught up
// (kPromoteLagEntriesMax); the last voter is never removed; and no change
// leaves the voters without a quorum of members the leader heard from
// lately (itself included). OK, or FAILED_PRECONDITION naming why not.
// REQUIRES: `status` is a leader's (it has the progress of every member).
absl::Status CheckMemberChange(const raft::Status& status, MemberChangeKind kind, NodeId target);

}  // namespace blixard::host

#endif  // BLIXARD_CORE_HOST_MEMBERSHIP_H_
