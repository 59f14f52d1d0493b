#include "core/host/controllers.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::host {

LeaderControllers::LeaderControllers(LeaderControllersOptions options,
                                     const ClusterStateMachine* sm)
    : options_(options), sm_(sm) {
  CHECK(sm_ != nullptr);
  CHECK_GT(options_.worker_ttl_us, 0);
  CHECK_GT(options_.advance_time_us, 0);
  CHECK_GT(options_.worker_fenced_after_us, 0);
}

uint64_t LeaderControllers::LogTimeMs(MonoMicros now) const {
  // In microseconds, rounded down once: an offset rounded to ms at each
  // election would let log time gain up to 1 ms per election.
  const int64_t stamped_ms = (now + log_time_offset_us_) / kMicrosPerMilli;
  const uint64_t clock_ms = std::min<uint64_t>(
      static_cast<uint64_t>(std::max<int64_t>(stamped_ms, 0)), kLogTimeMsMax);
  return std::max(clock_ms, sm_->now_ms());
}

void LeaderControllers::OnBecameLeader(MonoMicros now) {
  // Signed: continue from the replicated clock whether this node's clock
  // reads ahead of it (a longer uptime: a clamp at zero would move log time
  // forward by the difference and expire every timeout at once) or behind.
  const int64_t state_us =
      static_cast<int64_t>(std::min(sm_->now_ms(), kLogTimeMsMax)) * kMicrosPerMilli;
  log_time_offset_us_ = state_us - now;
  // Every worker gets a full TTL from now: the old leader's view is gone.
  last_heartbeat_.clear();
  for (const auto& [node_id, worker] : sm_->workers()) last_heartbeat_[node_id] = now;
  last_elected_ = now;
  cooldown_.clear();
  last_proposal_ = now;
}

void LeaderControllers::OnHeartbeat(uint64_t node_id, MonoMicros now) {
  // Only workers the state knows are tracked (a bound by the state itself);
  // an unknown node's heartbeat is noted once it registers.
  if (sm_->FindWorker(node_id) == nullptr) return;
  last_heartbeat_[node_id] = now;
}

bool LeaderControllers::Cooled(const std::string& subject, MonoMicros now) {
  auto it = cooldown_.find(subject);
  if (it != cooldown_.end() && now - it->second < options_.worker_ttl_us) return false;
  if (it == cooldown_.end() && cooldown_.size() >= kControllerCooldownMax) {
    return true;  // full: act without remembering (a duplicate is harmless)
  }
  cooldown_[subject] = now;
  return true;
}

void LeaderControllers::ForgetOldCooldowns(MonoMicros now) {
  for (auto it = cooldown_.begin(); it != cooldown_.end();) {
    if (now - it->second >= options_.worker_ttl_us) {
      it = cooldown_.erase(it);
    } else {
      ++it;
    }
  }
}

void LeaderControllers::Run(MonoMicros now, const Propose& propose) {
  if (cooldown_.size() >= kControllerCooldownMax / 2) ForgetOldCooldowns(now);
  // Heartbeats of workers that were removed are forgotten.
  for (auto it = last_heartbeat_.begin(); it != last_heartbeat_.end();) {
    if (sm_->FindWorker(it->first) == nullptr) {
      it = last_heartbeat_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [node_id, worker] : sm_->workers()) {
    auto seen = last_heartbeat_.find(node_id);
    const MonoMicros last = seen == last_heartbeat_.end() ? now : seen->second;
    if (seen == last_heartbeat_.end()) last_heartbeat_[node_id] = now;
    const bool silent = now - last > options_.worker_ttl_us;
    const cluster::WorkerStatus status = worker.status();
    if (silent && (status == cluster::WORKER_ONLINE || status == cluster::WORKER_BUSY ||
                   status == cluster::WORKER_DRAINING)) {
      if (Cooled(absl::StrCat("lost/", node_id), now)) {
        cluster::Command command;
        command.mutable_worker_lost()->set_node_id(node_id);
        command.mutable_worker_lost()->set_reason(
            absl::StrCat("no heartbeat for ", (now - last) / kMicrosPerMilli, " ms"));
        if (propose(std::move(command))) last_proposal_ = now;
      }
    } else if (!silent && status == cluster::WORKER_OFFLINE) {
      if (Cooled(absl::StrCat("back/", node_id), now)) {
        cluster::Command command;
        command.mutable_set_worker_status()->set_node_id(node_id);
        command.mutable_set_worker_status()->set_status(cluster::WORKER_ONLINE);
        if (propose(std::move(command))) last_proposal_ = now;
      }
    }
  }
  ProposeTimeouts(now, propose);
  if (now - last_proposal_ >= options_.advance_time_us) {
    cluster::Command command;
    command.mutable_advance_time();
    if (propose(std::move(command))) last_proposal_ = now;
  }
}

MonoMicros LeaderControllers::LastHeard(uint64_t node_id) const {
  auto it = last_heartbeat_.find(node_id);
  return it == last_heartbeat_.end() ? last_elected_ : it->second;
}

void LeaderControllers::ProposeTimeouts(MonoMicros now, const Propose& propose) {
  // Tasks whose worker never reported an end because it went silent. A
  // worker that is heard reports its own timeouts (its Executor kills the
  // task at the timeout); declaring one while that worker may still run it
  // would let the retry start elsewhere while the first run goes on. A
  // silent one has stopped it by worker_fenced_after_us (its fence).
  // From the state machine's deadline index: O(log n + overdue), whatever
  // the number of tasks (a scan of every record cost O(tasks) per tick).
  // Pointers stay valid through the loop: proposing applies nothing.
  for (const cluster::TaskRecord* task :
       sm_->TasksPastDeadline(sm_->now_ms(), options_.task_timeout_slack_ms,
                              kTimeoutsPerTickMax)) {
    if (now - LastHeard(task->worker_id()) < options_.worker_fenced_after_us) continue;
    if (!Cooled(absl::StrCat("timeout/", task->task_id()), now)) continue;
    cluster::Command command;
    cluster::TaskFinished* finished = command.mutable_task_finished();
    finished->set_task_id(task->task_id());
    finished->set_worker_id(task->worker_id());
    finished->mutable_result()->set_attempt(task->attempt());
    finished->mutable_result()->set_timed_out(true);
    finished->mutable_result()->set_error("timed out (declared by the leader)");
    if (propose(std::move(command))) last_proposal_ = now;
  }
}

void LeaderControllers::CheckInvariants() const {
  CHECK_LE(cooldown_.size(), kControllerCooldownMax);
  // state_ms <= kLogTimeMsMax and the clock read >= 0 when it was set.
  CHECK_LE(log_time_offset_us_, static_cast<int64_t>(kLogTimeMsMax) * kMicrosPerMilli);
}

}  // namespace blixard::host
