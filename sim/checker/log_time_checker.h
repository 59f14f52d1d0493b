// LogTimeChecker: the simulator's oracle for replicated log time (the
// state machine's now_ms(), advanced by the leader-stamped log_time_ms of
// every command; see core/sm and the Host's LogTimeMs), checked after every
// command a node applies:
//
//   never back     on one node's applied sequence, log time never decreases
//                  (a node that restarts replays from its snapshot: its new
//                  sequence is judged on its own);
//   never ahead    log time never runs ahead of virtual time by more than
//                  the clock model allows (below);
//   no early       a task is TIMED_OUT (or retried after a timed-out
//   timeout        attempt) only when its timeout has elapsed: either the
//                  worker measured it (the result's execution_time_ms, on
//                  the worker's own clock, reaches timeout_secs) or log time
//                  says so (now_ms - assigned_time_ms >= timeout_secs; the
//                  leader's timeout controller declares from log time only).
//
// The ahead bound. Log time is stitched from leaders' monotonic clocks: a
// leader continues from the replicated log time it finds at its election and
// advances it by what its own clock advances, and apply takes the max. So
// over the run (virtual time t since the start, when log time is 0) log time
// can have advanced by at most what the fastest clock could advance in t:
//
//   bound_ms(t) = (t + t * drift_ppm_max / 1'000'000 + jumped_us) / 1000
//                 + kAheadSlackMs
//
// where drift_ppm_max is the largest |drift| any node's clock ever ran at
// (SimClock::drift_ppm_abs_max, seeded drift and clock_drift faults
// included), jumped_us the sum of every clock_jump fault on any node
// (SimClock::jumped_us), and kAheadSlackMs covers rounding microseconds to
// milliseconds once. A Host that derives log time from its raw clock, or
// from any clock offset clamped at zero, shows its machine's uptime (up to
// kClockUptimeMaxUs in the simulator) and fails this at once.
//
// The bound assumes the Host keeps its offset without accumulating rounding
// (e.g. in microseconds: log_ms = (clock_us + offset_us) / 1000 with
// offset_us = state_ms * 1000 - clock_us at election). A Host that rounds
// its clock to milliseconds before taking the offset may run ahead by up to
// 1 ms per election; that would need a slack per leader change.
//
// The early-timeout rule deliberately does not compare worker-reported
// timeouts with log time: log time stands still while there is no leader,
// so a task that really ran for its whole timeout can show less elapsed
// log time. Those are judged by the worker's own measurement.
//
// Not thread-safe; deterministic (ordered containers only).
#ifndef BLIXARD_SIM_CHECKER_LOG_TIME_CHECKER_H_
#define BLIXARD_SIM_CHECKER_LOG_TIME_CHECKER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/base/types.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/cluster_state_machine.h"
#include "sim/checker/safety_checker.h"

namespace blixard::sim {

class LogTimeChecker {
 public:
  // Rounding slack of the ahead bound, in log-time milliseconds.
  static constexpr int64_t kAheadSlackMs = 1;

  // The ahead bound in milliseconds after `elapsed_us` of virtual time.
  // REQUIRES: all arguments >= 0; drift_ppm_max <= 1'000'000.
  static int64_t AheadBoundMs(int64_t elapsed_us, int64_t drift_ppm_max, int64_t jumped_us);

  // The virtual time (since the start of the run) and the clock model's
  // state for the checks that follow: the largest |drift| any clock ran at
  // so far and the total of all forward jumps so far. REQUIRES: time never
  // decreases; all >= 0.
  void SetTime(int64_t now_us, int64_t drift_ppm_max, int64_t jumped_us);

  // `node`'s state machine after it applied `command` at `index`.
  void OnApplied(NodeId node, Index index, const cluster::Command& command,
                 const ClusterStateMachine& sm);

  bool ok() const { return !violation_.has_value(); }
  const std::optional<Violation>& violation() const { return violation_; }
  uint64_t checks() const { return checks_; }

 private:
  struct Applied {
    Index index;
    uint64_t now_ms = 0;
  };

  void Fail(NodeId node, Index index, std::string property, std::string detail);
  void CheckTimedOut(NodeId node, Index index, const cluster::TaskFinished& finished,
                     const ClusterStateMachine& sm);

  int64_t now_us_ = 0;
  int64_t drift_ppm_max_ = 0;
  int64_t jumped_us_ = 0;
  std::map<NodeId, Applied> last_;
  std::optional<Violation> violation_;
  uint64_t checks_ = 0;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_CHECKER_LOG_TIME_CHECKER_H_
