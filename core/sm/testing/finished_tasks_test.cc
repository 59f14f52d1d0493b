#include "core/sm/testing/finished_tasks.h"

#include "core/base/rng.h"
#include "core/base/status_matchers.h"
#include "core/sm/cluster_state_machine.h"
#include "gtest/gtest.h"

namespace blixard::sm::testing {
namespace {

TEST(FinishedTasksTest, SnapshotRestoresWithEveryTaskKept) {
  FinishedTasksState shape;
  shape.finished = 1000;
  shape.running = 50;
  shape.timeout_spread_secs = 10;
  ClusterStateMachine sm(RetainingOptions(shape.finished));
  ASSERT_OK(sm.RestoreFromProto(MakeFinishedTasksSnapshot(shape)));
  sm.CheckInvariants();
  EXPECT_EQ(sm.finished_tasks(), 1000u);
  EXPECT_EQ(sm.tasks().size(), 1050u);
  ASSERT_NE(sm.FindTask("done-00000999"), nullptr);
  EXPECT_EQ(sm.FindTask("done-00000999")->state(), cluster::TASK_SUCCEEDED);
  // Deadlines spread over 1..10 s after the clock: 5 tasks per second.
  EXPECT_TRUE(sm.TasksPastDeadline(sm.now_ms() + 999, 0, 100).empty());
  EXPECT_EQ(sm.TasksPastDeadline(sm.now_ms() + 1000, 0, 100).size(), 5u);
  EXPECT_EQ(sm.TasksPastDeadline(sm.now_ms() + 10'000, 0, 100).size(), 50u);
}

TEST(FinishedTasksTest, LifecyclesApplyAndTheRetentionRuleKeepsTheCount) {
  FinishedTasksState shape;
  shape.finished = 100;
  ClusterStateMachine sm(RetainingOptions(shape.finished));
  ASSERT_OK(sm.RestoreFromProto(MakeFinishedTasksSnapshot(shape)));
  const Index next = ApplyTaskLifecycles(sm, sm.applied_index().Next(), 10, "more-",
                                         sm.now_ms() + 1);
  sm.CheckInvariants();
  EXPECT_EQ(next, Index(MakeFinishedTasksSnapshot(shape).applied_index() + 31));
  EXPECT_EQ(sm.finished_tasks(), 100u);
  // The ten oldest went: done-00000000..09.
  EXPECT_EQ(sm.FindTask("done-00000009"), nullptr);
  EXPECT_NE(sm.FindTask("done-00000010"), nullptr);
  ASSERT_NE(sm.FindTask("more-00000009"), nullptr);
  EXPECT_EQ(sm.FindTask("more-00000009")->state(), cluster::TASK_SUCCEEDED);
}

// Digest streams the serialization into the hash in 64 KiB pieces: over
// many pieces it must still be the hash of the whole snapshot.
TEST(FinishedTasksTest, DigestOfALargeStateIsTheHashOfItsSnapshot) {
  FinishedTasksState shape;
  shape.finished = 5000;
  shape.running = 100;
  ClusterStateMachine sm(RetainingOptions(shape.finished));
  ASSERT_OK(sm.RestoreFromProto(MakeFinishedTasksSnapshot(shape)));
  const std::string snapshot = sm.Snapshot();
  EXPECT_GT(snapshot.size(), 4u * 64 * 1024);
  EXPECT_EQ(sm.Digest(), StableHash64(snapshot));
}

}  // namespace
}  // namespace blixard::sm::testing
