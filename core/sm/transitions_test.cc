#include "core/sm/transitions.h"

#include <set>
#include <utility>

#include "gtest/gtest.h"

namespace blixard::sm {
namespace {

TEST(TransitionsTest, WorkerTableMatchesTheDocumentedEdges) {
  using S = cluster::WorkerStatus;
  const std::set<std::pair<S, S>> legal = {
      {cluster::WORKER_ONLINE, cluster::WORKER_BUSY},
      {cluster::WORKER_ONLINE, cluster::WORKER_DRAINING},
      {cluster::WORKER_ONLINE, cluster::WORKER_OFFLINE},
      {cluster::WORKER_ONLINE, cluster::WORKER_FAILED},
      {cluster::WORKER_BUSY, cluster::WORKER_ONLINE},
      {cluster::WORKER_BUSY, cluster::WORKER_DRAINING},
      {cluster::WORKER_BUSY, cluster::WORKER_OFFLINE},
      {cluster::WORKER_BUSY, cluster::WORKER_FAILED},
      {cluster::WORKER_DRAINING, cluster::WORKER_ONLINE},
      {cluster::WORKER_DRAINING, cluster::WORKER_OFFLINE},
      {cluster::WORKER_DRAINING, cluster::WORKER_FAILED},
      {cluster::WORKER_OFFLINE, cluster::WORKER_ONLINE},
      {cluster::WORKER_OFFLINE, cluster::WORKER_FAILED},
  };
  int legal_count = 0;
  for (int from = 0; from <= cluster::WorkerStatus_MAX; ++from) {
    for (int to = 0; to <= cluster::WorkerStatus_MAX; ++to) {
      const auto f = static_cast<S>(from);
      const auto t = static_cast<S>(to);
      EXPECT_EQ(IsLegalWorkerTransition(f, t), legal.count({f, t}) == 1)
          << WorkerStatusName(f) << " -> " << WorkerStatusName(t);
      legal_count += IsLegalWorkerTransition(f, t) ? 1 : 0;
    }
  }
  EXPECT_EQ(legal_count, 13);
}

TEST(TransitionsTest, NoSelfTransitionsAndFailedIsAbsorbing) {
  for (int s = 0; s <= cluster::WorkerStatus_MAX; ++s) {
    const auto status = static_cast<cluster::WorkerStatus>(s);
    EXPECT_FALSE(IsLegalWorkerTransition(status, status));
    EXPECT_FALSE(IsLegalWorkerTransition(cluster::WORKER_FAILED, status));
  }
}

TEST(TransitionsTest, VmObservedLifecycle) {
  EXPECT_TRUE(IsLegalVmObservedTransition(cluster::VM_OBSERVED_UNSPECIFIED,
                                          cluster::VM_CREATING));
  EXPECT_TRUE(
      IsLegalVmObservedTransition(cluster::VM_STARTING, cluster::VM_RUNNING));
  EXPECT_FALSE(
      IsLegalVmObservedTransition(cluster::VM_STOPPED, cluster::VM_RUNNING));
  EXPECT_FALSE(
      IsLegalVmObservedTransition(cluster::VM_RUNNING, cluster::VM_CREATING));
  EXPECT_FALSE(IsLegalVmObservedTransition(cluster::VM_OBSERVED_UNSPECIFIED,
                                           cluster::VM_RUNNING));
}

TEST(TransitionsTest, NamesAndTerminalStates) {
  EXPECT_EQ(WorkerStatusName(cluster::WORKER_DRAINING), "DRAINING");
  EXPECT_EQ(TaskStateName(cluster::TASK_TIMED_OUT), "TIMED_OUT");
  EXPECT_EQ(VmObservedName(cluster::VM_STOPPING), "STOPPING");
  EXPECT_TRUE(IsTerminal(cluster::TASK_CANCELLED));
  EXPECT_FALSE(IsTerminal(cluster::TASK_RUNNING));
}

}  // namespace
}  // namespace blixard::sm
