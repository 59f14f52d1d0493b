#include "core/raft/confchange.h"

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

using ::blixard::testing::StatusIs;

ConfChangeSingle C(ConfChangeType type, uint64_t id) {
  ConfChangeSingle c;
  c.set_type(type);
  c.set_node_id(id);
  return c;
}

ProgressTracker Adopt(ConfigAndProgress cp) {
  ProgressTracker t(8, 0);
  t.config() = std::move(cp.config);
  t.progress() = std::move(cp.progress);
  t.CheckInvariants();
  return t;
}

ProgressTracker Three() {
  ConfState cs;
  for (uint64_t id = 1; id <= 3; ++id) cs.add_voters(id);
  ProgressTracker empty(8, 0);
  absl::StatusOr<ConfigAndProgress> cp = RestoreConfig(empty, Index(10), cs);
  EXPECT_TRUE(cp.ok());
  return Adopt(std::move(*cp));
}

TEST(ConfChangeTest, SimpleAddAndRemove) {
  ProgressTracker t = Three();
  auto cp = Changer(t, Index(10)).Simple({C(CONF_CHANGE_ADD_NODE, 4)});
  ASSERT_TRUE(cp.ok());
  t = Adopt(std::move(*cp));
  EXPECT_EQ(t.config().voters.incoming().size(), 4u);
  EXPECT_EQ(t.Find(NodeId(4))->next(), Index(10));
  cp = Changer(t, Index(10)).Simple({C(CONF_CHANGE_REMOVE_NODE, 1)});
  ASSERT_TRUE(cp.ok());
  t = Adopt(std::move(*cp));
  EXPECT_EQ(t.Find(NodeId(1)), nullptr);
}

TEST(ConfChangeTest, SimpleRefusesTwoVoterChanges) {
  ProgressTracker t = Three();
  EXPECT_THAT(Changer(t, Index(1)).Simple({C(CONF_CHANGE_ADD_NODE, 4),
                                           C(CONF_CHANGE_ADD_NODE, 5)}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Changer(t, Index(1)).Simple({C(CONF_CHANGE_REMOVE_NODE, 1),
                                           C(CONF_CHANGE_REMOVE_NODE, 2),
                                           C(CONF_CHANGE_REMOVE_NODE, 3)}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ConfChangeTest, JointReplaceThenLeave) {
  ProgressTracker t = Three();
  auto cp = Changer(t, Index(5)).EnterJoint(
      true, {C(CONF_CHANGE_ADD_NODE, 4), C(CONF_CHANGE_REMOVE_NODE, 1)});
  ASSERT_TRUE(cp.ok());
  t = Adopt(std::move(*cp));
  EXPECT_TRUE(t.config().voters.joint());
  EXPECT_TRUE(t.config().auto_leave);
  EXPECT_NE(t.Find(NodeId(1)), nullptr) << "outgoing voter keeps progress";
  EXPECT_THAT(Changer(t, Index(5)).Simple({C(CONF_CHANGE_ADD_NODE, 5)}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  cp = Changer(t, Index(5)).LeaveJoint();
  ASSERT_TRUE(cp.ok());
  t = Adopt(std::move(*cp));
  EXPECT_FALSE(t.config().voters.joint());
  EXPECT_EQ(t.Find(NodeId(1)), nullptr);
  EXPECT_EQ(t.GetConfState().voters_size(), 3);
}

TEST(ConfChangeTest, DemoteVoterInJointBecomesLearnerOnLeave) {
  ProgressTracker t = Three();
  auto cp = Changer(t, Index(5)).EnterJoint(false, {C(CONF_CHANGE_ADD_LEARNER_NODE, 3)});
  ASSERT_TRUE(cp.ok());
  t = Adopt(std::move(*cp));
  EXPECT_EQ(t.config().learners_next.count(NodeId(3)), 1u);
  cp = Changer(t, Index(5)).LeaveJoint();
  ASSERT_TRUE(cp.ok());
  t = Adopt(std::move(*cp));
  EXPECT_TRUE(t.Find(NodeId(3))->is_learner());
  EXPECT_EQ(t.config().learners.count(NodeId(3)), 1u);
}

TEST(ConfChangeTest, RestoreRoundTripsJointConfState) {
  ConfState cs;
  cs.add_voters(1);
  cs.add_voters(4);
  cs.add_voters_outgoing(1);
  cs.add_voters_outgoing(2);
  cs.add_voters_outgoing(3);
  cs.add_learners(5);
  cs.add_learners_next(3);
  cs.set_auto_leave(true);
  ProgressTracker empty(8, 0);
  auto cp = RestoreConfig(empty, Index(3), cs);
  ASSERT_TRUE(cp.ok()) << cp.status();
  ProgressTracker t = Adopt(std::move(*cp));
  EXPECT_TRUE(ConfStatesEquivalent(t.GetConfState(), cs));
}

TEST(ConfChangeTest, InvalidConfStateIsRefused) {
  ConfState cs;
  cs.add_voters(1);
  cs.add_learners(1);
  EXPECT_THAT(ValidateConfState(cs), StatusIs(absl::StatusCode::kInvalidArgument));
  ConfState cs2;
  cs2.add_voters(1);
  cs2.set_auto_leave(true);
  EXPECT_THAT(ValidateConfState(cs2), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ConfChangeTest, TransitionClassification) {
  ConfChange cc;
  bool auto_leave = false;
  EXPECT_TRUE(ConfChangeLeavesJoint(cc));
  *cc.add_changes() = C(CONF_CHANGE_ADD_NODE, 2);
  EXPECT_FALSE(ConfChangeEntersJoint(cc, &auto_leave));
  *cc.add_changes() = C(CONF_CHANGE_ADD_NODE, 3);
  EXPECT_TRUE(ConfChangeEntersJoint(cc, &auto_leave));
  EXPECT_TRUE(auto_leave);
  cc.set_transition(CONF_CHANGE_TRANSITION_JOINT_EXPLICIT);
  EXPECT_TRUE(ConfChangeEntersJoint(cc, &auto_leave));
  EXPECT_FALSE(auto_leave);
}

}  // namespace
}  // namespace blixard::raft
