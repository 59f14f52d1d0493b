#include "core/host/membership.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace blixard::host {

absl::Status CheckMemberChange(const raft::Status& status, MemberChangeKind kind, NodeId target) {
  auto refuse = [&](auto&&... why) {
    return absl::FailedPreconditionError(absl::StrCat(why...));
  };
  if (status.conf_change_pending) {
    return refuse("another membership change is in progress: retry once it has applied");
  }
  const raft::ConfState& config = status.config;
  if (config.voters_outgoing_size() > 0) {
    return refuse("the configuration is joint: retry once it has left it");
  }
  std::set<uint64_t> voters(config.voters().begin(), config.voters().end());
  const std::set<uint64_t> learners(config.learners().begin(), config.learners().end());
  const uint64_t t = target.value();
  // Whether the leader heard lately from a majority of `set` (itself
  // counts).
  auto has_quorum = [&status](const std::set<uint64_t>& set) {
    size_t active = 0;
    for (uint64_t v : set) {
      auto pr = status.progress.find(NodeId(v));
      if (NodeId(v) == status.id || (pr != status.progress.end() && pr->second.recent_active)) {
        ++active;
      }
    }
    return active >= set.size() / 2 + 1;
  };
  switch (kind) {
    case MemberChangeKind::kAddLearner:
      if (voters.count(t) > 0 || learners.count(t) > 0) {
        return refuse("node ", t, " is already a member");
      }
      return absl::OkStatus();
    case MemberChangeKind::kPromote: {
      if (learners.count(t) == 0) return refuse("node ", t, " is not a learner");
      auto pr = status.progress.find(target);
      const uint64_t match = pr == status.progress.end() ? 0 : pr->second.match.value();
      if (match + kPromoteLagEntriesMax < status.commit.value()) {
        return refuse("learner ", t, " has not caught up: it holds the log up to ", match,
                      " of ", status.commit.value(), " committed (promoted within ",
                      kPromoteLagEntriesMax, " entries)");
      }
      voters.insert(t);
      if (!has_quorum(voters)) return refuse("promoting ", t, " would leave no active quorum");
      return absl::OkStatus();
    }
    case MemberChangeKind::kRemove:
      if (voters.count(t) == 0 && learners.count(t) == 0) {
        return refuse("node ", t, " is not a member");
      }
      if (voters.count(t) > 0) {
        if (voters.size() <= 1) return refuse("node ", t, " is the last voter");
        voters.erase(t);
        if (!has_quorum(voters)) return refuse("removing ", t, " would leave no active quorum");
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown membership change");
}

}  // namespace blixard::host
