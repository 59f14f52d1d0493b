#include "core/raft/testing/cluster.h"

#include "gtest/gtest.h"

namespace blixard::raft::testing {
namespace {

TEST(ClusterTest, ElectsAndReplicatesAndChecksSafety) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  c.raw(2).Campaign();
  c.Stabilize();
  c.raw(2).Propose("a");
  c.Stabilize();
  SafetyChecker checker;
  EXPECT_EQ(checker.Check(c), "");
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_FALSE(c.node(id).applied.empty());
    EXPECT_EQ(c.node(id).applied.back().data(), "a");
  }
}

TEST(ClusterTest, CrashLosesOnlyUnpersistedWrites) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(1);
  c.raw(1).Campaign();
  c.Stabilize();
  c.raw(1).Propose("durable");
  c.Stabilize();
  c.raw(1).Propose("lost");
  ASSERT_TRUE(c.TakeReady(1));
  c.Crash(1);
  c.Restart(1);
  EXPECT_EQ(c.node(1).storage.LastIndex(), Index(2));
  c.Stabilize();
  ASSERT_EQ(c.node(1).applied.size(), 2u);
  EXPECT_EQ(c.node(1).applied.back().data(), "durable");
}

TEST(ClusterTest, CompactThenRestartRestoresStateMachineFromSnapshot) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(1);
  c.raw(1).Campaign();
  c.Stabilize();
  c.raw(1).Propose("x");
  c.Stabilize();
  const uint64_t hash = c.node(1).applied_hash();
  ASSERT_TRUE(c.Compact(1, Index(2)).ok());
  c.Crash(1);
  c.Restart(1);
  EXPECT_EQ(c.node(1).base_index, Index(2));
  EXPECT_EQ(c.node(1).applied_hash(), hash);
}

}  // namespace
}  // namespace blixard::raft::testing
