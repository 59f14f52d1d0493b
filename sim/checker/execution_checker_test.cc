#include "sim/checker/execution_checker.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::testing::HasSubstr;

WorkSpec Task(const char* id) {
  WorkSpec spec;
  spec.kind = WorkKind::kTask;
  spec.id = id;
  spec.command = "x";
  return spec;
}

TEST(ExecutionCheckerTest, SequentialRunsOnAnyNodesPass) {
  ExecutionChecker checker;
  checker.OnLive(NodeId(1), Task("t"), true, false);
  checker.OnLive(NodeId(1), Task("t"), false, false);
  checker.OnLive(NodeId(2), Task("t"), true, false);  // retried elsewhere, after
  checker.OnLive(NodeId(3), Task("u"), true, false);  // another task at once
  checker.OnLive(NodeId(2), Task("t"), false, false);
  checker.OnLive(NodeId(1), Task("t"), true, false);
  EXPECT_TRUE(checker.ok());
  EXPECT_EQ(checker.executions(), 4u);
}

TEST(ExecutionCheckerTest, OverlapAfterAProcessCrashIsCaughtAndSaysSo) {
  ExecutionChecker checker;
  checker.SetTime(100);
  checker.OnLive(NodeId(1), Task("t"), true, false);
  checker.OnLive(NodeId(1), Task("t"), true, true);  // node 1's process crashed
  checker.SetTime(900);
  checker.OnLive(NodeId(2), Task("t"), true, false);
  ASSERT_FALSE(checker.ok());
  EXPECT_EQ(checker.violation()->property, "no double run");
  EXPECT_EQ(checker.violation()->node, NodeId(2));
  EXPECT_THAT(checker.violation()->detail, HasSubstr("still runs on n1 (started at t=100 us"));
  EXPECT_THAT(checker.violation()->detail, HasSubstr("survived a process crash"));
}

TEST(ExecutionCheckerTest, OverlapWithoutACrashIsCaughtAsCutOff) {
  ExecutionChecker checker;
  checker.OnLive(NodeId(3), Task("t"), true, false);
  checker.OnLive(NodeId(1), Task("t"), true, false);
  ASSERT_FALSE(checker.ok());
  EXPECT_THAT(checker.violation()->detail, HasSubstr("cut off or declared lost"));
}

TEST(ExecutionCheckerTest, VmsAreNotJudged) {
  ExecutionChecker checker;
  WorkSpec vm = Task("v");
  vm.kind = WorkKind::kVm;
  checker.OnLive(NodeId(1), vm, true, false);
  checker.OnLive(NodeId(2), vm, true, false);
  EXPECT_TRUE(checker.ok());
}

}  // namespace
}  // namespace blixard::sim
