#include "core/raft/confchange.h"

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace blixard::raft {

bool ConfChangeLeavesJoint(const ConfChange& cc) {
  return cc.changes_size() == 0;
}

bool ConfChangeEntersJoint(const ConfChange& cc, bool* auto_leave) {
  if (cc.transition() != CONF_CHANGE_TRANSITION_AUTO || cc.changes_size() > 1) {
    *auto_leave = cc.transition() == CONF_CHANGE_TRANSITION_AUTO ||
                  cc.transition() == CONF_CHANGE_TRANSITION_JOINT_IMPLICIT;
    return true;
  }
  *auto_leave = false;
  return false;
}

absl::Status CheckConfigInvariants(const ConfigAndProgress& cp) {
  const TrackerConfig& cfg = cp.config;
  for (NodeId id : cfg.voters.ids()) {
    if (cp.progress.count(id) == 0) {
      return absl::InternalError(absl::StrCat("no progress for voter ", id.value()));
    }
  }
  for (NodeId id : cfg.learners) {
    auto it = cp.progress.find(id);
    if (it == cp.progress.end()) {
      return absl::InternalError(absl::StrCat("no progress for learner ", id.value()));
    }
    if (!it->second.is_learner()) {
      return absl::InternalError(absl::StrCat("learner ", id.value(), " not marked learner"));
    }
    if (cfg.voters.contains(id)) {
      return absl::InternalError(absl::StrCat(id.value(), " is voter and learner"));
    }
  }
  for (NodeId id : cfg.learners_next) {
    auto it = cp.progress.find(id);
    if (it == cp.progress.end()) {
      return absl::InternalError(absl::StrCat("no progress for learner_next ", id.value()));
    }
    if (!cfg.voters.outgoing().contains(id)) {
      return absl::InternalError(absl::StrCat(id.value(), " is in learners_next but not outgoing"));
    }
    if (it->second.is_learner()) {
      return absl::InternalError(absl::StrCat(id.value(), " in learners_next is marked learner"));
    }
  }
  if (!cfg.voters.joint()) {
    if (!cfg.learners_next.empty()) {
      return absl::InternalError("learners_next outside a joint config");
    }
    if (cfg.auto_leave) return absl::InternalError("auto_leave outside a joint config");
  }
  return absl::OkStatus();
}

absl::StatusOr<ConfigAndProgress> Changer::CheckAndCopy() const {
  ConfigAndProgress cp{tracker_.config(), tracker_.progress()};
  RETURN_IF_ERROR(CheckConfigInvariants(cp));
  return cp;
}

absl::StatusOr<ConfigAndProgress> Changer::EnterJoint(
    bool auto_leave, const std::vector<ConfChangeSingle>& changes) const {
  ASSIGN_OR_RETURN(ConfigAndProgress cp, CheckAndCopy());
  if (cp.config.voters.joint()) {
    return absl::FailedPreconditionError("config is already joint");
  }
  if (cp.config.voters.incoming().empty()) {
    return absl::FailedPreconditionError("can't make a zero-voter config joint");
  }
  cp.config.voters.outgoing() = cp.config.voters.incoming();
  RETURN_IF_ERROR(Apply(cp, changes));
  cp.config.auto_leave = auto_leave;
  RETURN_IF_ERROR(CheckConfigInvariants(cp));
  return cp;
}

absl::StatusOr<ConfigAndProgress> Changer::LeaveJoint() const {
  ASSIGN_OR_RETURN(ConfigAndProgress cp, CheckAndCopy());
  if (!cp.config.voters.joint()) {
    return absl::FailedPreconditionError("can't leave a non-joint config");
  }
  for (NodeId id : cp.config.learners_next) {
    cp.config.learners.insert(id);
    cp.progress.at(id).set_is_learner(true);
  }
  cp.config.learners_next.clear();
  for (NodeId id : cp.config.voters.outgoing().ids()) {
    if (!cp.config.voters.incoming().contains(id) &&
        cp.config.learners.count(id) == 0) {
      cp.progress.erase(id);
    }
  }
  cp.config.voters.outgoing() = MajorityConfig();
  cp.config.auto_leave = false;
  RETURN_IF_ERROR(CheckConfigInvariants(cp));
  return cp;
}

absl::StatusOr<ConfigAndProgress> Changer::Simple(
    const std::vector<ConfChangeSingle>& changes) const {
  ASSIGN_OR_RETURN(ConfigAndProgress cp, CheckAndCopy());
  if (cp.config.voters.joint()) {
    return absl::FailedPreconditionError(
        "can't apply a simple config change in a joint config");
  }
  RETURN_IF_ERROR(Apply(cp, changes));
  // A single-server change may alter at most one voter (thesis 4.1).
  const std::vector<NodeId>& before = tracker_.config().voters.incoming().ids();
  const std::vector<NodeId>& after = cp.config.voters.incoming().ids();
  std::vector<NodeId> diff;
  std::set_symmetric_difference(before.begin(), before.end(), after.begin(),
                                after.end(), std::back_inserter(diff));
  if (diff.size() > 1) {
    return absl::InvalidArgumentError(
        "more than one voter changed without entering joint config");
  }
  RETURN_IF_ERROR(CheckConfigInvariants(cp));
  return cp;
}

absl::Status Changer::Apply(ConfigAndProgress& cp,
                            const std::vector<ConfChangeSingle>& changes) const {
  for (const ConfChangeSingle& cc : changes) {
    const NodeId id(cc.node_id());
    if (id.is_none()) continue;  // etcd-raft's convention: a no-op
    switch (cc.type()) {
      case CONF_CHANGE_ADD_NODE:
        MakeVoter(cp, id);
        break;
      case CONF_CHANGE_ADD_LEARNER_NODE:
        MakeLearner(cp, id);
        break;
      case CONF_CHANGE_REMOVE_NODE:
        Remove(cp, id);
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unknown conf change type ", static_cast<int>(cc.type())));
    }
  }
  if (cp.config.voters.incoming().empty()) {
    return absl::InvalidArgumentError("removed all voters");
  }
  return absl::OkStatus();
}

void Changer::MakeVoter(ConfigAndProgress& cp, NodeId id) const {
  auto it = cp.progress.find(id);
  if (it == cp.progress.end()) {
    InitProgress(cp, id, /*is_learner=*/false);
    return;
  }
  it->second.set_is_learner(false);
  cp.config.learners.erase(id);
  cp.config.learners_next.erase(id);
  cp.config.voters.incoming().Insert(id);
}

void Changer::MakeLearner(ConfigAndProgress& cp, NodeId id) const {
  auto it = cp.progress.find(id);
  if (it == cp.progress.end()) {
    InitProgress(cp, id, /*is_learner=*/true);
    return;
  }
  if (it->second.is_learner()) return;
  Progress pr = it->second;
  Remove(cp, id);
  // Remove may have erased the progress; keep it, the node stays a member.
  cp.progress.erase(id);
  // A voter of the outgoing half stays a voter until the joint config is
  // left; it becomes a learner then.
  if (cp.config.voters.outgoing().contains(id)) {
    cp.config.learners_next.insert(id);
  } else {
    pr.set_is_learner(true);
    cp.config.learners.insert(id);
  }
  cp.progress.emplace(id, pr);
}

void Changer::Remove(ConfigAndProgress& cp, NodeId id) const {
  if (cp.progress.count(id) == 0) return;
  cp.config.voters.incoming().Erase(id);
  cp.config.learners.erase(id);
  cp.config.learners_next.erase(id);
  // An outgoing voter keeps its progress until the joint config is left.
  if (!cp.config.voters.outgoing().contains(id)) cp.progress.erase(id);
}

void Changer::InitProgress(ConfigAndProgress& cp, NodeId id,
                           bool is_learner) const {
  if (is_learner) {
    cp.config.learners.insert(id);
  } else {
    cp.config.voters.incoming().Insert(id);
  }
  // Probe from the end of the log; a rejection hint walks it back. Treat the
  // new member as active so check-quorum does not fire before it answers.
  Progress pr(Index(0), std::max(last_index_, Index(1)),
              tracker_.inflight_count_max(), tracker_.inflight_bytes_max(),
              is_learner);
  pr.set_recent_active(true);
  cp.progress.emplace(id, std::move(pr));
}

absl::Status ValidateConfState(const ConfState& cs) {
  std::set<uint64_t> voters(cs.voters().begin(), cs.voters().end());
  std::set<uint64_t> outgoing(cs.voters_outgoing().begin(),
                              cs.voters_outgoing().end());
  for (uint64_t id : cs.learners()) {
    if (id == 0) return absl::InvalidArgumentError("learner id 0");
    if (voters.count(id) > 0 || outgoing.count(id) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", id, " is both voter and learner"));
    }
  }
  for (uint64_t id : cs.learners_next()) {
    if (outgoing.count(id) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("learner_next ", id, " is not an outgoing voter"));
    }
  }
  if (outgoing.empty() && (cs.learners_next_size() > 0 || cs.auto_leave())) {
    return absl::InvalidArgumentError("joint fields set outside a joint config");
  }
  if (voters.count(0) > 0 || outgoing.count(0) > 0) {
    return absl::InvalidArgumentError("voter id 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<ConfigAndProgress> RestoreConfig(const ProgressTracker& empty,
                                                Index last_index,
                                                const ConfState& cs) {
  RETURN_IF_ERROR(ValidateConfState(cs));
  auto single = [](ConfChangeType type, uint64_t id) {
    ConfChangeSingle c;
    c.set_type(type);
    c.set_node_id(id);
    return c;
  };
  std::vector<ConfChangeSingle> outgoing;
  std::vector<ConfChangeSingle> incoming;
  // The outgoing voters first build the "old" config; then the joint change
  // removes them and adds the incoming members (etcd-raft's Restore).
  for (uint64_t id : cs.voters_outgoing()) {
    outgoing.push_back(single(CONF_CHANGE_ADD_NODE, id));
    incoming.push_back(single(CONF_CHANGE_REMOVE_NODE, id));
  }
  for (uint64_t id : cs.voters()) incoming.push_back(single(CONF_CHANGE_ADD_NODE, id));
  for (uint64_t id : cs.learners()) {
    incoming.push_back(single(CONF_CHANGE_ADD_LEARNER_NODE, id));
  }
  for (uint64_t id : cs.learners_next()) {
    incoming.push_back(single(CONF_CHANGE_ADD_LEARNER_NODE, id));
  }

  ProgressTracker tracker(empty.inflight_count_max(), empty.inflight_bytes_max());
  auto adopt = [&tracker](ConfigAndProgress cp) {
    tracker.config() = std::move(cp.config);
    tracker.progress() = std::move(cp.progress);
    tracker.CheckMembership();
  };
  if (outgoing.empty()) {
    // Apply one at a time: each is a valid single change from the previous.
    for (const ConfChangeSingle& c : incoming) {
      // Building from nothing: "removed all voters" is expected while only
      // learners have been added so far; apply directly instead.
      ConfigAndProgress cp{tracker.config(), tracker.progress()};
      if (c.type() == CONF_CHANGE_ADD_NODE) {
        cp.config.voters.incoming().Insert(NodeId(c.node_id()));
        Progress pr(Index(0), std::max(last_index, Index(1)),
                    tracker.inflight_count_max(), tracker.inflight_bytes_max(),
                    false);
        pr.set_recent_active(true);
        cp.progress.emplace(NodeId(c.node_id()), std::move(pr));
      } else {
        cp.config.learners.insert(NodeId(c.node_id()));
        Progress pr(Index(0), std::max(last_index, Index(1)),
                    tracker.inflight_count_max(), tracker.inflight_bytes_max(),
                    true);
        pr.set_recent_active(true);
        cp.progress.emplace(NodeId(c.node_id()), std::move(pr));
      }
      adopt(std::move(cp));
    }
  } else {
    for (const ConfChangeSingle& c : outgoing) {
      ConfigAndProgress cp{tracker.config(), tracker.progress()};
      cp.config.voters.incoming().Insert(NodeId(c.node_id()));
      Progress pr(Index(0), std::max(last_index, Index(1)),
                  tracker.inflight_count_max(), tracker.inflight_bytes_max(),
                  false);
      pr.set_recent_active(true);
      cp.progress.emplace(NodeId(c.node_id()), std::move(pr));
      adopt(std::move(cp));
    }
    Changer changer(tracker, last_index);
    ASSIGN_OR_RETURN(ConfigAndProgress cp,
                     changer.EnterJoint(cs.auto_leave(), incoming));
    adopt(std::move(cp));
  }
  ConfigAndProgress result{tracker.config(), tracker.progress()};
  RETURN_IF_ERROR(CheckConfigInvariants(result));
  return result;
}

bool ConfStatesEquivalent(const ConfState& a, const ConfState& b) {
  auto as_set = [](const google::protobuf::RepeatedField<uint64_t>& f) {
    return std::set<uint64_t>(f.begin(), f.end());
  };
  return as_set(a.voters()) == as_set(b.voters()) &&
         as_set(a.learners()) == as_set(b.learners()) &&
         as_set(a.voters_outgoing()) == as_set(b.voters_outgoing()) &&
         as_set(a.learners_next()) == as_set(b.learners_next()) &&
         a.auto_leave() == b.auto_leave();
}

}  // namespace blixard::raft
