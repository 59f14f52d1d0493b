// Fast ways to build a cluster state machine that holds many finished tasks,
// for benchmarks of the leader's per-tick work and of the retention rule
// (issue 13). Test-only.
//
//   // One million finished tasks and 1,000 RUNNING ones, without applying
//   // four million commands: restore a snapshot built directly.
//   FinishedTasksState shape;
//   shape.finished = 1'000'000;
//   shape.running = 1'000;
//   ClusterStateMachine sm(RetainingOptions(shape.finished));
//   CHECK_OK(sm.RestoreFromProto(MakeFinishedTasksSnapshot(shape)));
//   // Or through the apply path: submit, start and finish n more tasks.
//   Index next = ApplyTaskLifecycles(sm, sm.applied_index().Next(), 100, "more-",
//                                    sm.now_ms());
//
// The snapshot is a state such lifecycles lead to (one worker,
// kFixtureWorkerId, registered and ONLINE with room left; its records pass
// every check of Restore), so it can also be installed as a Raft snapshot in
// a Host benchmark (serialize it: the Host restores the bytes).
#ifndef BLIXARD_CORE_SM_TESTING_FINISHED_TASKS_H_
#define BLIXARD_CORE_SM_TESTING_FINISHED_TASKS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/base/types.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/cluster_limits.h"
#include "core/sm/cluster_state_machine.h"

namespace blixard::sm::testing {

// The worker every fixture task runs on: the most cores, memory and disk a
// worker may have, so kWorkerCpuCoresMax one-core tasks fit at once.
inline constexpr uint64_t kFixtureWorkerId = 1;

// Options under which a state machine keeps `finished_max` finished tasks
// for ever (the largest age bound): the retention rule evicts only by count.
// REQUIRES: finished_max >= 1.
ClusterStateMachineOptions RetainingOptions(size_t finished_max);

struct FinishedTasksState {
  // SUCCEEDED tasks "done-<i>" (i zero-padded to 8 digits), i = 0..n-1,
  // finished at log time start_ms + i: the oldest is done-00000000.
  size_t finished = 0;
  // RUNNING tasks "run-<i>" on kFixtureWorkerId, assigned at the state's
  // clock, with timeout_secs = 1 + i % timeout_spread_secs: their deadlines
  // spread over that many seconds after the clock.
  // REQUIRES: running <= kWorkerCpuCoresMax (one core each).
  size_t running = 0;
  uint64_t timeout_spread_secs = 3600;
  uint64_t start_ms = 1'000;
};

// The snapshot of that state; its clock (now_ms) is the last finish time
// (start_ms + finished), its applied index one past the last command such a
// history would have had. RestoreFromProto accepts it under
// RetainingOptions(finished) (CHECKed by the test).
cluster::StateSnapshot MakeFinishedTasksSnapshot(const FinishedTasksState& shape);

// Applies, from index `next`, n lifecycles of one-core tasks
// "<prefix><i>" (i zero-padded to 8 digits): SubmitTask (placed at once on
// kFixtureWorkerId), TaskStarted, TaskFinished (success), all at log time
// `log_time_ms`: 3n entries. CHECKs that each command applies. Returns the
// index after the last one.
// REQUIRES: kFixtureWorkerId is ONLINE with a free core, and the ids are new.
Index ApplyTaskLifecycles(ClusterStateMachine& sm, Index next, size_t n,
                          absl::string_view prefix, uint64_t log_time_ms);

// The commands of one such lifecycle, for callers that apply them their own
// way (a Host benchmark proposing them).
cluster::Command SubmitOneCoreTask(const std::string& task_id);
cluster::Command StartFixtureTask(const std::string& task_id);
cluster::Command FinishFixtureTask(const std::string& task_id);

}  // namespace blixard::sm::testing

#endif  // BLIXARD_CORE_SM_TESTING_FINISHED_TASKS_H_
