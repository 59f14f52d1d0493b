// ExecutionChecker: the simulator's oracle that no task runs twice at once.
//
// It is fed the executors' ground truth (SimExecutor::SetLiveObserver on
// every node): when an execution of a task begins (Start accepted) and ends
// (the process exited, or died with its machine), whatever any Host heard
// or believes. A task id with live executions on two nodes at the same
// moment is a violation: the work's side effects happen twice, whatever the
// replicated state says about attempts. (Two on one node cannot happen: an
// executor refuses a second Start of a running id.)
//
// The report says why the older execution was still alive, to tell apart
// the ways a Host could get there (each now guarded in the WorkerAgent):
//   - it survived a process crash of its node (the restarted Host must
//     adopt it or stop it, never report it lost while it runs);
//   - its node process never crashed: the worker was cut off from the
//     leader (partition, pause) and its tasks placed elsewhere while it
//     still ran them (the agent's fence), or it started an attempt from a
//     stale view of the log (claim before start).
//
// VMs are not judged (a migration legitimately overlaps the old stop with
// the new start today); only tasks.
//
// Not thread-safe; deterministic (ordered containers only).
#ifndef BLIXARD_SIM_CHECKER_EXECUTION_CHECKER_H_
#define BLIXARD_SIM_CHECKER_EXECUTION_CHECKER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/base/types.h"
#include "core/env.h"
#include "sim/checker/safety_checker.h"

namespace blixard::sim {

class ExecutionChecker {
 public:
  void SetTime(int64_t now_us) { now_us_ = now_us; }

  // An execution of `spec` on `node` began (live) or ended (!live); a live
  // one may be reported again with survived_crash set. REQUIRES: an end
  // follows a begin on that node.
  void OnLive(NodeId node, const WorkSpec& spec, bool live, bool survived_crash);

  bool ok() const { return !violation_.has_value(); }
  const std::optional<Violation>& violation() const { return violation_; }
  uint64_t checks() const { return checks_; }
  // Task executions begun so far.
  uint64_t executions() const { return executions_; }

 private:
  struct Execution {
    int64_t started_us = 0;
    bool survived_crash = false;
  };

  std::map<std::string, std::map<NodeId, Execution>, std::less<>> live_;  // task id -> node
  int64_t now_us_ = 0;
  std::optional<Violation> violation_;
  uint64_t checks_ = 0;
  uint64_t executions_ = 0;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_CHECKER_EXECUTION_CHECKER_H_
