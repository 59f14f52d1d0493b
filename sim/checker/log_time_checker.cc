#include "sim/checker/log_time_checker.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/sm/transitions.h"

namespace blixard::sim {
namespace {

constexpr int64_t kPpmScale = 1'000'000;
constexpr int64_t kMicrosPerMs = 1000;
constexpr uint64_t kMsPerSecond = 1000;

}  // namespace

int64_t LogTimeChecker::AheadBoundMs(int64_t elapsed_us, int64_t drift_ppm_max,
                                     int64_t jumped_us) {
  CHECK_GE(elapsed_us, 0);
  CHECK_GE(drift_ppm_max, 0);
  CHECK_LE(drift_ppm_max, kPpmScale);
  CHECK_GE(jumped_us, 0);
  // elapsed_us is at most a few days of virtual time (< 2^40) and the rate
  // at most 2x: no overflow.
  const int64_t advance_us = elapsed_us + elapsed_us / kPpmScale * drift_ppm_max +
                             (elapsed_us % kPpmScale) * drift_ppm_max / kPpmScale + 1;
  return (advance_us + jumped_us) / kMicrosPerMs + kAheadSlackMs;
}

void LogTimeChecker::SetTime(int64_t now_us, int64_t drift_ppm_max, int64_t jumped_us) {
  CHECK_GE(now_us, now_us_);
  CHECK_GE(drift_ppm_max, 0);
  CHECK_GE(jumped_us, 0);
  now_us_ = now_us;
  drift_ppm_max_ = drift_ppm_max;
  jumped_us_ = jumped_us;
}

void LogTimeChecker::Fail(NodeId node, Index index, std::string property, std::string detail) {
  if (violation_) return;
  violation_ = Violation{now_us_, node, std::move(property),
                         absl::StrCat("after applying index ", index.value(), ": ", detail)};
}

void LogTimeChecker::OnApplied(NodeId node, Index index, const cluster::Command& command,
                               const ClusterStateMachine& sm) {
  if (violation_) return;
  ++checks_;
  const uint64_t now_ms = sm.now_ms();
  auto last = last_.find(node);
  if (last != last_.end() && index > last->second.index && now_ms < last->second.now_ms) {
    Fail(node, index, "log time monotonic",
         absl::StrCat("log time went back from ", last->second.now_ms, " ms (index ",
                      last->second.index.value(), ") to ", now_ms, " ms"));
    return;
  }
  // An index at or below the last one is a restarted node replaying its log
  // from a snapshot: a new sequence starts.
  last_[node] = Applied{index, now_ms};

  const int64_t bound_ms = AheadBoundMs(now_us_, drift_ppm_max_, jumped_us_);
  if (now_ms > static_cast<uint64_t>(bound_ms)) {
    Fail(node, index, "log time bounded",
         absl::StrCat("log time ", now_ms, " ms is ahead of virtual time ", now_us_,
                      " us by more than the clock model allows (bound ", bound_ms,
                      " ms: max drift ", drift_ppm_max_, " ppm, clock jumps ", jumped_us_,
                      " us, slack ", kAheadSlackMs, " ms); command ",
                      command.ShortDebugString().substr(0, 120)));
    return;
  }
  if (command.op_case() == cluster::Command::kTaskFinished &&
      command.task_finished().result().timed_out()) {
    CheckTimedOut(node, index, command.task_finished(), sm);
  }
}

void LogTimeChecker::CheckTimedOut(NodeId node, Index index,
                                   const cluster::TaskFinished& finished,
                                   const ClusterStateMachine& sm) {
  const cluster::TaskRecord* task = sm.FindTask(finished.task_id());
  const uint32_t attempt = finished.result().attempt();
  // Judge only a report the state machine took: the task holds this
  // attempt's timed-out result (a rejected stale report leaves another).
  // A duplicate of an accepted report is judged again, later: harmless,
  // elapsed time only grows.
  if (task == nullptr || task->attempt() != attempt || !task->has_result() ||
      task->result().attempt() != attempt || !task->result().timed_out()) {
    return;
  }
  const uint64_t timeout_ms = task->spec().timeout_secs() * kMsPerSecond;
  const std::string what =
      absl::StrCat("task ", task->task_id(), " attempt ", attempt, " (now ",
                   sm::TaskStateName(task->state()), ")");
  if (timeout_ms == 0) {
    Fail(node, index, "no early timeout", absl::StrCat(what, " timed out but has no timeout"));
    return;
  }
  const uint64_t measured_ms = task->result().execution_time_ms();
  const uint64_t now_ms = sm.now_ms();
  const uint64_t elapsed_ms =
      now_ms >= task->assigned_time_ms() ? now_ms - task->assigned_time_ms() : 0;
  if (measured_ms >= timeout_ms || elapsed_ms >= timeout_ms) return;
  Fail(node, index, "no early timeout",
       absl::StrCat(what, " timed out after ", elapsed_ms, " ms of log time since its assignment (",
                    task->assigned_time_ms(), " -> ", now_ms, ") and ", measured_ms,
                    " ms measured by the worker, below its timeout of ", timeout_ms, " ms"));
}

}  // namespace blixard::sim
