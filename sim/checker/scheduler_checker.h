// SchedulerChecker: the simulator's oracle for the scheduler's promises,
// checked on every node after every command it applies (not just at the
// end of an event, so a batch that assigns and then drains is judged step
// by step):
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
// Cost per call: O(workers + active tasks + VMs), independent of history.
// Not thread-safe; deterministic (ordered containers only).
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
  // `node`'s state machine after it applied `command` at `index`. Commands
  // that cannot move work or workers (the KV's) are skipped.
  void OnApplied(NodeId node, Index index, const cluster::Command& command,
                 const ClusterStateMachine& sm);
  // `node` restarted: its state was rebuilt, so nothing it saw before counts
  // as the previous step.
  void OnRecover(NodeId node);

  bool ok() const { return !violation_.has_value(); }
  const std::optional<Violation>& violation() const { return violation_; }
  uint64_t checks() const { return checks_; }

 private:
  // What a node's state looked like after its previous command. Entries of
  // tasks and VMs that finished stay (harmlessly): (worker, attempt) and
  // (worker, generation) change with every new placement, so a stale entry
  // never hides one.
  struct NodeView {
    std::map<uint64_t, std::pair<cluster::WorkerStatus, uint64_t>> workers;  // status, registered index
    std::map<std::string, std::pair<uint64_t, uint32_t>, std::less<>> assigned;  // task -> (worker, attempt)
    std::map<std::string, std::pair<uint64_t, uint64_t>, std::less<>> placed;    // vm -> (worker, generation)
  };

  void Fail(NodeId node, Index index, std::string detail);

  std::map<NodeId, NodeView> views_;
  std::optional<Violation> violation_;
  uint64_t checks_ = 0;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_CHECKER_SCHEDULER_CHECKER_H_
