#include "core/raft/raw_node.h"

#include "core/base/status_matchers.h"
#include "core/raft/testing/cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;
using testing::Cluster;
using testing::ClusterOptions;

TEST(RawNodeTest, ConfigValidateRejectsBadLimits) {
  MemoryStorage storage;
  NullLogger logger;
  Config c;
  c.id = NodeId(1);
  c.storage = &storage;
  c.logger = &logger;
  EXPECT_TRUE(c.Validate().ok());
  Config bad = c;
  bad.election_tick = 1;
  EXPECT_THAT(bad.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
  bad = c;
  bad.read_only_option = ReadOnlyOption::kLeaseBased;
  EXPECT_THAT(bad.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("check_quorum")));
  bad = c;
  bad.max_inflight_msgs = 0;
  EXPECT_THAT(RawNode::Create(bad), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RawNodeTest, SingleNodeCommitsOnlyAfterPersist) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(1);
  c.raw(1).Campaign();
  c.Stabilize();
  ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
  EXPECT_EQ(c.raw(1).Propose("x"), ProposalResult::kAccepted);
  // Take the Ready but do not persist: nothing may commit.
  ASSERT_TRUE(c.TakeReady(1));
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(1));
  c.Stabilize();
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(2));
  EXPECT_EQ(c.node(1).applied.back().data(), "x");
}

TEST(RawNodeTest, StepRejectsLocalAndMalformedMessages) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  Message m;
  m.set_type(MSG_HUP);
  m.set_to(1);
  m.set_from(2);
  EXPECT_THAT(c.raw(1).Step(m), StatusIs(absl::StatusCode::kInvalidArgument));
  m.set_type(MSG_APPEND);
  m.set_term(1);
  m.set_index(0);
  Entry* e = m.add_entries();
  e->set_index(5);  // not contiguous with index 0
  e->set_term(1);
  EXPECT_THAT(c.raw(1).Step(m), StatusIs(absl::StatusCode::kInvalidArgument));
  Message resp;
  resp.set_type(MSG_APPEND_RESPONSE);
  resp.set_to(1);
  resp.set_from(9);
  resp.set_term(1);
  EXPECT_THAT(c.raw(1).Step(resp), StatusIs(absl::StatusCode::kNotFound));
  Message wrong_to = resp;
  wrong_to.set_to(2);
  EXPECT_THAT(c.raw(1).Step(wrong_to), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(c.raw(1).raft().term(), Term(0));
}

TEST(RawNodeTest, OnPersistedOutOfOrderIsRefused) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(1);
  c.raw(1).Campaign();
  Ready rd = c.raw(1).GetReady();
  EXPECT_THAT(c.raw(1).OnPersisted(rd.number + 1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(c.raw(1).OnPersisted(rd.number).ok());
}

TEST(RawNodeTest, VoteGrantWaitsForPersistence) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  c.raw(1).Campaign();
  c.ProcessReady(1);
  c.DeliverTo(2);
  Ready rd = c.raw(2).GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  EXPECT_TRUE(rd.messages.empty());
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  EXPECT_EQ(rd.messages_after_persist[0].type(), MSG_VOTE_RESPONSE);
}

TEST(RawNodeTest, RestartNeverVotesTwiceInATerm) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  c.raw(1).Campaign();
  c.ProcessReady(1);
  c.DeliverTo(2);
  c.ProcessReady(2);  // node 2 persisted its vote for 1 in term 1
  c.Crash(2);
  c.Restart(2);
  EXPECT_EQ(c.raw(2).raft().term(), Term(1));
  EXPECT_EQ(c.raw(2).raft().vote(), NodeId(1));
  Message vote;
  vote.set_type(MSG_VOTE);
  vote.set_from(3);
  vote.set_to(2);
  vote.set_term(1);
  vote.set_index(10);
  vote.set_log_term(1);
  ASSERT_TRUE(c.raw(2).Step(vote).ok());
  Ready rd = c.raw(2).GetReady();
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  EXPECT_TRUE(rd.messages_after_persist[0].reject());
}

TEST(RawNodeTest, CrashBeforePersistLosesVote) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  c.raw(1).Campaign();
  c.ProcessReady(1);
  c.DeliverTo(2);
  ASSERT_TRUE(c.TakeReady(2));  // write pending, grant held back
  for (const Message& m : c.in_flight()) EXPECT_NE(m.from(), 2u);
  c.Crash(2);
  c.Restart(2);
  EXPECT_EQ(c.raw(2).raft().vote(), kNoNode);
}

}  // namespace
}  // namespace blixard::raft
