#include "core/raft/progress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::raft {

const char* ProgressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe: return "StateProbe";
    case ProgressState::kReplicate: return "StateReplicate";
    case ProgressState::kSnapshot: return "StateSnapshot";
  }
  return "?";
}

Progress::Progress(Index match, Index next, size_t inflight_count_max,
                   uint64_t inflight_bytes_max, bool is_learner)
    : match_(match),
      next_(next),
      is_learner_(is_learner),
      inflights_(inflight_count_max, inflight_bytes_max) {}

void Progress::ResetState(ProgressState state) {
  msg_app_flow_paused_ = false;
  pending_snapshot_ = Index(0);
  state_ = state;
  inflights_.Reset();
}

void Progress::BecomeProbe() {
  // After a snapshot, the follower is at least at the snapshot index; probe
  // from just after it.
  if (state_ == ProgressState::kSnapshot) {
    const Index pending = pending_snapshot_;
    ResetState(ProgressState::kProbe);
    next_ = std::max(match_.Next(), pending.Next());
  } else {
    ResetState(ProgressState::kProbe);
    next_ = match_.Next();
  }
}

void Progress::BecomeReplicate() {
  ResetState(ProgressState::kReplicate);
  next_ = match_.Next();
}

void Progress::BecomeSnapshot(Index snapshot_index) {
  CHECK_GT(snapshot_index, Index(0));
  ResetState(ProgressState::kSnapshot);
  pending_snapshot_ = snapshot_index;
}

void Progress::SentEntries(uint64_t count, uint64_t bytes) {
  switch (state_) {
    case ProgressState::kReplicate:
      if (count > 0) {
        next_ = next_ + count;
        inflights_.Add(next_.Prev(), bytes);
      }
      msg_app_flow_paused_ = inflights_.Full();
      break;
    case ProgressState::kProbe:
      // One probe at a time; a heartbeat response or an ack unpauses.
      if (count > 0) msg_app_flow_paused_ = true;
      break;
    case ProgressState::kSnapshot:
      CHECK(false) << "sending entries in the snapshot state";
  }
}

bool Progress::MaybeUpdate(Index index) {
  bool updated = false;
  if (match_ < index) {
    match_ = index;
    updated = true;
    msg_app_flow_paused_ = false;
  }
  next_ = std::max(next_, index.Next());
  return updated;
}

bool Progress::MaybeDecrTo(Index rejected, Index match_hint) {
  if (state_ == ProgressState::kReplicate) {
    // A rejection of something at or below match is stale.
    if (rejected <= match_) return false;
    // Pipelined appends past match were rejected: restart from match.
    next_ = match_.Next();
    return true;
  }
  // Probe (or snapshot): only the rejection of the outstanding probe counts.
  if (next_.Prev() != rejected) return false;
  const Index next = std::max(std::min(rejected, match_hint.Next()), match_.Next());
  // A follower that rejects the entry right after its match says its log
  // lost entries it acknowledged (a wiped disk under its old id). Probing
  // cannot go below match, so resending the same probe at once would
  // ping-pong forever; the probe stays paused until the next heartbeat
  // response asks again.
  if (next == next_) return false;
  next_ = next;
  msg_app_flow_paused_ = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state_) {
    case ProgressState::kProbe:
    case ProgressState::kReplicate:
      return msg_app_flow_paused_;
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

std::string Progress::ToString() const {
  std::string out = absl::StrCat(ProgressStateName(state_),
                                 " match=", match_.value(),
                                 " next=", next_.value());
  if (is_learner_) out += " learner";
  if (msg_app_flow_paused_) out += " paused";
  if (pending_snapshot_ > Index(0)) {
    absl::StrAppend(&out, " pendingSnap=", pending_snapshot_.value());
  }
  if (!recent_active_) out += " inactive";
  if (inflights_.count() > 0) {
    absl::StrAppend(&out, " inflight=", inflights_.count());
    if (inflights_.Full()) out += "[full]";
  }
  return out;
}

void Progress::CheckInvariants() const {
  CHECK_GT(next_, match_) << "next must stay beyond match";
  inflights_.CheckInvariants();
  if (state_ != ProgressState::kReplicate) {
    CHECK_EQ(inflights_.count(), 0u);
  }
  if (state_ == ProgressState::kSnapshot) {
    CHECK_GT(pending_snapshot_, Index(0));
  }
}

std::string TrackerConfig::ToString() const {
  std::string out = absl::StrCat("voters=", voters.ToString());
  auto join = [](const std::set<NodeId>& ids) {
    std::string s;
    for (NodeId id : ids) {
      if (!s.empty()) s += " ";
      absl::StrAppend(&s, id.value());
    }
    return s;
  };
  if (!learners.empty()) absl::StrAppend(&out, " learners=(", join(learners), ")");
  if (!learners_next.empty()) {
    absl::StrAppend(&out, " learners_next=(", join(learners_next), ")");
  }
  if (auto_leave) out += " autoleave";
  return out;
}

ProgressTracker::ProgressTracker(size_t inflight_count_max,
                                 uint64_t inflight_bytes_max)
    : inflight_count_max_(inflight_count_max),
      inflight_bytes_max_(inflight_bytes_max) {}

Progress* ProgressTracker::Find(NodeId id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

const Progress* ProgressTracker::Find(NodeId id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

ConfState ProgressTracker::GetConfState() const {
  ConfState cs;
  for (NodeId id : config_.voters.incoming().ids()) cs.add_voters(id.value());
  for (NodeId id : config_.voters.outgoing().ids()) {
    cs.add_voters_outgoing(id.value());
  }
  for (NodeId id : config_.learners) cs.add_learners(id.value());
  for (NodeId id : config_.learners_next) cs.add_learners_next(id.value());
  cs.set_auto_leave(config_.auto_leave);
  return cs;
}

bool ProgressTracker::IsSingleton() const {
  return config_.voters.incoming().size() == 1 && !config_.voters.joint();
}

Index ProgressTracker::Committed() const {
  return config_.voters.CommittedIndex([this](NodeId id) {
    const Progress* pr = Find(id);
    return pr == nullptr ? Index(0) : pr->match();
  });
}

bool ProgressTracker::QuorumActive() const {
  VoteResult result =
      config_.voters.Vote([this](NodeId id) -> std::optional<bool> {
        const Progress* pr = Find(id);
        if (pr == nullptr) return std::nullopt;
        return pr->recent_active();
      });
  return result == VoteResult::kWon;
}

void ProgressTracker::RecordVote(NodeId id, bool granted) {
  votes_.emplace(id, granted);  // the first vote counts; duplicates ignored
}

ProgressTracker::Tally ProgressTracker::TallyVotes() const {
  Tally tally;
  for (const auto& [id, pr] : progress_) {
    if (pr.is_learner()) continue;
    auto it = votes_.find(id);
    if (it == votes_.end()) continue;
    if (it->second) {
      ++tally.granted;
    } else {
      ++tally.rejected;
    }
  }
  tally.result = config_.voters.Vote([this](NodeId id) -> std::optional<bool> {
    auto it = votes_.find(id);
    if (it == votes_.end()) return std::nullopt;
    return it->second;
  });
  return tally;
}

void ProgressTracker::CheckInvariants() const {
  for (const auto& [id, pr] : progress_) pr.CheckInvariants();
  if (kExpensiveChecks) CheckMembership();
}

void ProgressTracker::CheckMembership() const {
  config_.voters.CheckInvariants();
  // Both halves directly: JointConfig::ids() would build their union.
  for (const MajorityConfig* half : {&config_.voters.incoming(), &config_.voters.outgoing()}) {
    for (NodeId id : half->ids()) {
      CHECK(Find(id) != nullptr) << "voter " << id << " has no progress";
    }
  }
  for (NodeId id : config_.learners) {
    const Progress* pr = Find(id);
    CHECK(pr != nullptr) << "learner " << id << " has no progress";
    CHECK(pr->is_learner()) << id;
    CHECK(!config_.voters.contains(id)) << "learner " << id << " is a voter";
  }
  for (NodeId id : config_.learners_next) {
    const Progress* pr = Find(id);
    CHECK(pr != nullptr) << id;
    CHECK(!pr->is_learner()) << id;
    CHECK(config_.voters.outgoing().contains(id)) << id;
  }
  for (const auto& [id, pr] : progress_) {
    CHECK(config_.voters.contains(id) || config_.learners.count(id) > 0)
        << "progress for non-member " << id;
  }
  if (!config_.voters.joint()) {
    CHECK(config_.learners_next.empty());
    CHECK(!config_.auto_leave);
  }
}

}  // namespace blixard::raft
