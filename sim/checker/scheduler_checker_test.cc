#include "sim/checker/scheduler_checker.h"

#include "core/base/rng.h"
#include "core/sm/testing/command_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::testing::HasSubstr;

cluster::Command Register(uint64_t node, uint64_t cpu, const char* feature = nullptr) {
  cluster::Command c;
  c.mutable_register_worker()->set_node_id(node);
  c.mutable_register_worker()->set_address("10.0.0.1:7000");
  c.mutable_register_worker()->mutable_capacity()->set_cpu_cores(cpu);
  c.mutable_register_worker()->mutable_capacity()->set_memory_mb(4096);
  c.mutable_register_worker()->mutable_capacity()->set_disk_gb(100);
  if (feature != nullptr) c.mutable_register_worker()->add_features(feature);
  return c;
}

cluster::Command Status(uint64_t node, cluster::WorkerStatus status) {
  cluster::Command c;
  c.mutable_set_worker_status()->set_node_id(node);
  c.mutable_set_worker_status()->set_status(status);
  return c;
}

cluster::Command Submit(const char* id, uint64_t cpu) {
  cluster::Command c;
  c.mutable_submit_task()->set_task_id(id);
  cluster::TaskSpec* spec = c.mutable_submit_task()->mutable_spec();
  spec->set_command("x");
  spec->mutable_resources()->set_cpu_cores(cpu);
  spec->mutable_resources()->set_memory_mb(128);
  spec->mutable_resources()->set_disk_gb(1);
  spec->set_max_attempts(1);
  return c;
}

TEST(SchedulerCheckerTest, RandomCommandStreamsPassOnEveryStep) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SchedulerChecker checker;
    ClusterStateMachine sm;
    sm::testing::CommandGenerator generator{Rng(seed)};
    for (uint64_t i = 1; i <= 300; ++i) {
      const cluster::Command command = generator.Next(sm);
      sm.Apply(Index(i), command);
      checker.OnApplied(NodeId(1), Index(i), command, sm);
      ASSERT_TRUE(checker.ok()) << "seed " << seed << ": " << checker.violation()->detail;
    }
    EXPECT_GT(checker.checks(), 0u);
  }
}

TEST(SchedulerCheckerTest, IllegalStatusTransitionIsCaught) {
  // Two replicas that disagree: one saw the worker fail, the other shows it
  // ONLINE again without re-registering. Fed as consecutive states of one
  // node, that is FAILED -> ONLINE, which the table forbids.
  ClusterStateMachine failed, online;
  ASSERT_EQ(failed.Apply(Index(1), Register(1, 8)).message(), "");
  online.Apply(Index(1), Register(1, 8));
  ASSERT_EQ(failed.Apply(Index(2), Status(1, cluster::WORKER_FAILED)).message(), "");
  SchedulerChecker checker;
  checker.OnApplied(NodeId(1), Index(2), Status(1, cluster::WORKER_FAILED), failed);
  ASSERT_TRUE(checker.ok());
  checker.OnApplied(NodeId(1), Index(3), Register(1, 8), online);
  ASSERT_FALSE(checker.ok());
  EXPECT_THAT(checker.violation()->detail, HasSubstr("FAILED -> ONLINE"));
}

TEST(SchedulerCheckerTest, AssignmentToADrainingWorkerIsCaught) {
  // The same task pending while its worker drains, and assigned to that
  // still-draining worker on the next step: a placement the scheduler must
  // never make.
  ClusterStateMachine pending;
  ASSERT_EQ(pending.Apply(Index(1), Register(1, 1)).message(), "");
  ASSERT_EQ(pending.Apply(Index(2), Submit("a", 1)).message(), "");  // takes the only core
  ASSERT_EQ(pending.Apply(Index(3), Submit("b", 1)).message(), "");  // waits
  ASSERT_EQ(pending.Apply(Index(4), Status(1, cluster::WORKER_DRAINING)).message(), "");
  ClusterStateMachine assigned;
  assigned.Apply(Index(1), Register(1, 1));
  assigned.Apply(Index(2), Submit("b", 1));  // b assigned at once
  ASSERT_EQ(assigned.Apply(Index(3), Status(1, cluster::WORKER_DRAINING)).message(), "");
  ASSERT_EQ(assigned.FindTask("b")->state(), cluster::TASK_ASSIGNED);
  ASSERT_EQ(pending.FindTask("b")->state(), cluster::TASK_PENDING);
  SchedulerChecker checker;
  checker.OnApplied(NodeId(1), Index(3), Submit("b", 1), pending);
  ASSERT_TRUE(checker.ok()) << checker.violation()->detail;
  checker.OnApplied(NodeId(1), Index(4), Submit("b", 1), assigned);
  ASSERT_FALSE(checker.ok());
  // Seen first (after a restart), the same state is the baseline.
  SchedulerChecker fresh;
  fresh.OnApplied(NodeId(1), Index(4), Submit("b", 1), assigned);
  EXPECT_TRUE(fresh.ok());
  EXPECT_THAT(checker.violation()->detail, HasSubstr("task b was assigned to worker 1 while it is DRAINING"));
}

TEST(SchedulerCheckerTest, PlacementBeforeADrainInTheSameCommandIsFine) {
  // A command can place work (time-driven requeues run first) and then take
  // the worker out of service: ONLINE on either side of it is enough.
  ClusterStateMachine pending;
  pending.Apply(Index(1), Register(1, 1));
  pending.Apply(Index(2), Submit("a", 1));
  pending.Apply(Index(3), Submit("b", 1));
  ClusterStateMachine assigned;
  assigned.Apply(Index(1), Register(1, 1));
  assigned.Apply(Index(2), Submit("b", 1));
  assigned.Apply(Index(3), Status(1, cluster::WORKER_DRAINING));
  SchedulerChecker checker;
  checker.OnApplied(NodeId(1), Index(3), Submit("b", 1), pending);
  checker.OnApplied(NodeId(1), Index(4), Status(1, cluster::WORKER_DRAINING), assigned);
  EXPECT_TRUE(checker.ok()) << checker.violation()->detail;
}

// Two replicas' states of worker 1, registered at index 1: `failed` also
// marked it FAILED at index 2, `online` did not.
struct FailedOnline {
  ClusterStateMachine failed, online;
};
FailedOnline FailedAndOnline() {
  FailedOnline states;
  states.failed.Apply(Index(1), Register(1, 8));
  states.online.Apply(Index(1), Register(1, 8));
  states.failed.Apply(Index(2), Status(1, cluster::WORKER_FAILED));
  return states;
}

TEST(SchedulerCheckerTest, KvCommandsAreSkipped) {
  const auto [failed, online] = FailedAndOnline();
  SchedulerChecker checker;
  checker.OnApplied(NodeId(1), Index(2), Status(1, cluster::WORKER_FAILED), failed);
  cluster::Command put;
  put.mutable_kv_put()->set_key("k");
  checker.OnApplied(NodeId(1), Index(3), put, online);
  EXPECT_TRUE(checker.ok());
  EXPECT_EQ(checker.checks(), 1u);
}

TEST(SchedulerCheckerTest, EachIndexIsJudgedOnceOnTheFirstNodeToApplyIt) {
  const auto [failed, online] = FailedAndOnline();
  SchedulerChecker checker;
  checker.OnApplied(NodeId(1), Index(2), Status(1, cluster::WORKER_FAILED), failed);
  // Node 2 applying an index already judged is not judged again.
  checker.OnApplied(NodeId(2), Index(2), Status(1, cluster::WORKER_FAILED), failed);
  EXPECT_EQ(checker.checks(), 1u);
  // The next index is judged against the previous one, whichever node
  // applies it: FAILED -> ONLINE without re-registering is caught.
  checker.OnApplied(NodeId(2), Index(3), Register(1, 8), online);
  EXPECT_FALSE(checker.ok());
}

TEST(SchedulerCheckerTest, AGapStartsANewBaseline) {
  const auto [failed, online] = FailedAndOnline();
  SchedulerChecker checker;
  checker.OnApplied(NodeId(1), Index(2), Status(1, cluster::WORKER_FAILED), failed);
  // Index 9 after index 2: the states between are unknown (a snapshot was
  // installed), so 9's is a baseline, not a step from 2's.
  checker.OnApplied(NodeId(1), Index(9), Register(1, 8), online);
  EXPECT_TRUE(checker.ok()) << checker.violation()->detail;
}

TEST(SchedulerCheckerTest, AKvCommandAfterAGapDoesNotEndTheBaseline) {
  // A task placed while its worker was ONLINE; the worker drains later. Seen
  // first after a gap through a KV command, the drained state is still the
  // baseline for the next command, not a step where the task was placed.
  ClusterStateMachine drained;
  drained.Apply(Index(1), Register(1, 1));
  drained.Apply(Index(2), Submit("a", 1));
  drained.Apply(Index(3), Status(1, cluster::WORKER_DRAINING));
  ASSERT_EQ(drained.FindTask("a")->state(), cluster::TASK_ASSIGNED);
  SchedulerChecker checker;
  checker.OnApplied(NodeId(1), Index(1), Register(1, 1), drained);
  cluster::Command put;
  put.mutable_kv_put()->set_key("k");
  checker.OnApplied(NodeId(1), Index(7), put, drained);
  checker.OnApplied(NodeId(1), Index(8), Status(1, cluster::WORKER_DRAINING), drained);
  EXPECT_TRUE(checker.ok()) << checker.violation()->detail;
}

}  // namespace
}  // namespace blixard::sim
