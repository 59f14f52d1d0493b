// Raft (raft.h) membership: applying conf changes and switching to a new
// configuration (thesis 4.2 and 4.3).
#include "core/raft/raft.h"

#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/raft/confchange.h"
#include "core/raft/util.h"

namespace blixard::raft {

bool Raft::ConfChangeRemovesSelf(const ConfChange& cc) const {
  // Conservative: a change that names us as removed or as a learner, or a
  // leave-joint when we are not an incoming voter.
  if (ConfChangeLeavesJoint(cc)) return !tracker_.config().voters.incoming().contains(id_);
  for (const ConfChangeSingle& c : cc.changes()) {
    if (c.node_id() == id_.value() && (c.type() == CONF_CHANGE_REMOVE_NODE ||
                                       c.type() == CONF_CHANGE_ADD_LEARNER_NODE)) {
      return true;
    }
  }
  return false;
}

ConfState Raft::ApplyConfChange(const ConfChange& cc) {
  Changer changer(tracker_, log_.LastIndex());
  absl::StatusOr<ConfigAndProgress> cp;
  bool auto_leave = false;
  std::vector<ConfChangeSingle> changes(cc.changes().begin(), cc.changes().end());
  if (ConfChangeLeavesJoint(cc)) {
    cp = changer.LeaveJoint();
  } else if (ConfChangeEntersJoint(cc, &auto_leave)) {
    cp = changer.EnterJoint(auto_leave, changes);
  } else {
    cp = changer.Simple(changes);
  }
  if (!cp.ok()) {
    logger_->Error(Prefix(), " ignoring invalid conf change ", DescribeConfChange(cc),
                   ": ", cp.status().ToString());
    return tracker_.GetConfState();
  }
  return SwitchToConfig(std::move(*cp));
}

ConfState Raft::SwitchToConfig(ConfigAndProgress cp) {
  tracker_.config() = std::move(cp.config);
  tracker_.progress() = std::move(cp.progress);
  tracker_.CheckMembership();
  logger_->Info(Prefix(), " switched to configuration ", tracker_.config().ToString());
  ConfState cs = tracker_.GetConfState();
  const Progress* self = tracker_.Find(id_);
  is_learner_ = self != nullptr && self->is_learner();
  if ((self == nullptr || is_learner_) && role_ == Role::kLeader) {
    // A removed or demoted leader cannot count itself; it steps down so a
    // member can take over (thesis 4.2.2) rather than lead a cluster it is
    // not part of.
    if (config_.step_down_on_removal) {
      logger_->Info(Prefix(), " stepping down: no longer a voter");
      BecomeFollower(term_, kNoNode);
    }
    return cs;
  }
  if (role_ != Role::kLeader || cs.voters_size() == 0) return cs;
  // The quorum changed: maybe more is committed now.
  if (MaybeCommit()) {
    BcastAppend();
  } else {
    for (auto& [id, pr] : tracker_.progress()) {
      if (id == id_) continue;
      MaybeSendAppend(id, false);
    }
  }
  if (!lead_transferee_.is_none() &&
      !tracker_.config().voters.contains(lead_transferee_)) {
    logger_->Info(Prefix(), " aborting leadership transfer to removed node ",
                  lead_transferee_.value());
    AbortLeaderTransfer();
  }
  return cs;
}

}  // namespace blixard::raft
