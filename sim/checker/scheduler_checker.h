// SchedulerChecker: the simulator's oracle for the scheduler's promises,
// checked after every command of the log (not just at the end of an event,
// so a batch that assigns and then drains is judged step by step):
//
//   no over-commit      every worker's reservation fits its capacity and is
//                       exactly the sum of its ASSIGNED/RUNNING tasks and
//                       placed VMs (nothing reserved twice or leaked);
//   features            work sits only on workers with every feature it
//                       requires;
//   ONLINE placements   a task newly assigned, or a VM newly placed, lands
//                       on a worker that is ONLINE at that moment;
//   legal transitions   worker status changes follow the table in
//                       core/sm/transitions.h.
//
// Each log index is judged once, on the first node that applies it: every
// node applies the same commands (the safety checker's state machine
// safety) to a deterministic state machine whose digests the safety checker
// compares across nodes, so the other replicas' states at that index are the
// same state. The previous step is the replicated state at the index before;
// after a gap (the first applier installed a snapshot) the state is a new
// baseline for the ONLINE rule, the other checks still run.
//
// Cost per judged index: O(workers + active tasks + VMs), independent of
// history. Not thread-safe; deterministic (ordered containers only).
#ifndef BLIXARD_SIM_CHECKER_SCHEDULER_CHECKER_H_
#define BLIXARD_SIM_CHECKER_SCHEDULER_CHECKER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "core/base/types.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/cluster_state_machine.h"
#include "sim/checker/safety_checker.h"

namespace blixard::sim {

class SchedulerChecker {
 public:
  // `node`'s state machine after it applied `command` at `index`. Indexes
  // already judged, and commands that cannot move work or workers (the
  // KV's), are skipped.
  void OnApplied(NodeId node, Index index, const cluster::Command& command,
                 const ClusterStateMachine& sm);

  bool ok() const { return !violation_.has_value(); }
  const std::optional<Violation>& violation() const { return violation_; }
  uint64_t checks() const { return checks_; }

 private:
  // What the state looked like after the previous index. Entries of
  // tasks and VMs that finished stay (harmlessly): (worker, attempt) and
  // (worker, generation) change with every new placement, so a stale entry
  // never hides one.
  struct View {
    std::map<uint64_t, std::pair<cluster::WorkerStatus, uint64_t>> workers;  // status, registered index
    std::map<std::string, std::pair<uint64_t, uint32_t>, std::less<>> assigned;  // task -> (worker, attempt)
    std::map<std::string, std::pair<uint64_t, uint64_t>, std::less<>> placed;    // vm -> (worker, generation)
  };

  void Fail(NodeId node, Index index, std::string detail);

  View view_;
  bool view_valid_ = false;  // view_ is the state at judged_ (or KV-equal)
  Index judged_;             // the last index judged; 0: none yet
  std::optional<Violation> violation_;
  uint64_t checks_ = 0;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_CHECKER_SCHEDULER_CHECKER_H_
