// Feature tests of the Raft state machine beyond the paper's section 5:
// pre-vote, check-quorum, stickiness, flow control, leadership transfer,
// forwarding, learners, membership changes, snapshots, reads, and refusal of
// contradictory input.
#include "core/raft/raft.h"

#include <string>

#include "core/raft/raw_node.h"
#include "core/raft/testing/cluster.h"
#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

using testing::Cluster;
using testing::ClusterOptions;

class RaftTest : public ::testing::Test {
 protected:
  Cluster& Make(size_t n, ClusterOptions opts = {}) {
    cluster_ = std::make_unique<Cluster>(opts, &logger_);
    cluster_->AddVoters(n);
    return *cluster_;
  }
  void Elect(Cluster& c, uint64_t id) {
    c.raw(id).Campaign();
    c.Stabilize();
    ASSERT_EQ(c.raw(id).raft().role(), Role::kLeader);
  }
  NullLogger logger_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(RaftTest, PreVoteDoesNotRaiseTermOfPartitionedNode) {
  ClusterOptions opts;
  opts.pre_vote = true;
  Cluster& c = Make(3, opts);
  Elect(c, 1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) {
    c.TickElection(3);
    c.Stabilize();
  }
  EXPECT_EQ(c.raw(3).raft().term(), Term(1)) << "pre-vote never won";
  c.Heal();
  c.TickHeartbeat(1);
  c.Stabilize();
  EXPECT_EQ(c.raw(1).raft().role(), Role::kLeader) << "the leader is not disrupted";
}

TEST_F(RaftTest, CheckQuorumLeaderStepsDownWhenIsolated) {
  ClusterOptions opts;
  opts.check_quorum = true;
  Cluster& c = Make(3, opts);
  Elect(c, 1);
  c.Isolate(1);
  c.TickElection(1);
  c.TickElection(1);
  EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
}

TEST_F(RaftTest, LeaderStickinessRefusesDisruptiveVotes) {
  ClusterOptions opts;
  opts.check_quorum = true;
  Cluster& c = Make(3, opts);
  Elect(c, 1);
  // Node 3 times out while partitioned and raises its term.
  c.Isolate(3);
  c.TickElection(3);
  c.Stabilize();
  ASSERT_EQ(c.raw(3).raft().term(), Term(2));
  c.Heal();
  c.raw(3).Campaign();
  c.ProcessReady(3);
  c.DeliverTo(2);
  EXPECT_EQ(c.raw(2).raft().term(), Term(1)) << "vote ignored inside the lease";
  EXPECT_EQ(c.raw(2).raft().lead(), NodeId(1));
}

TEST_F(RaftTest, UncommittedSizeCapDropsProposalsUnderPartition) {
  ClusterOptions opts;
  opts.max_uncommitted_entries_size = 10;
  Cluster& c = Make(3, opts);
  Elect(c, 1);
  c.Isolate(1);
  EXPECT_EQ(c.raw(1).Propose("123456"), ProposalResult::kAccepted);
  EXPECT_EQ(c.raw(1).Propose("123456"), ProposalResult::kDroppedUncommittedLimit);
  c.Heal();
  c.TickHeartbeat(1);
  c.Stabilize();
  EXPECT_EQ(c.raw(1).Propose("123456"), ProposalResult::kAccepted)
      << "committing frees the budget";
}

TEST_F(RaftTest, InflightWindowPausesReplication) {
  ClusterOptions opts;
  opts.max_inflight_msgs = 2;
  opts.max_size_per_msg = 1;
  Cluster& c = Make(3, opts);
  Elect(c, 1);
  for (int i = 0; i < 5; ++i) {
    c.raw(1).Propose("x" + std::to_string(i));
    c.ProcessReady(1);
  }
  size_t to_two = 0;
  for (const Message& m : c.in_flight()) {
    if (m.to() == 2 && m.type() == MSG_APPEND) ++to_two;
  }
  EXPECT_EQ(to_two, 2u);
  EXPECT_TRUE(c.raw(1).GetStatus().progress.at(NodeId(2)).paused);
  c.Stabilize();
  EXPECT_EQ(c.raw(2).raft().log().LastIndex(), Index(6));
}

TEST_F(RaftTest, TransferLeadershipCatchesUpTargetThenTimesOutNow) {
  Cluster& c = Make(3);
  Elect(c, 1);
  c.Isolate(3);
  c.raw(1).Propose("a");
  c.Stabilize();
  c.Heal();
  EXPECT_EQ(c.raw(1).TransferLeader(NodeId(3)), ProposalResult::kAccepted);
  EXPECT_EQ(c.raw(1).Propose("dropped"), ProposalResult::kDroppedTransferring);
  c.Stabilize();
  EXPECT_EQ(c.raw(3).raft().role(), Role::kLeader);
  EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
}

TEST_F(RaftTest, TransferAbortsAfterElectionTimeout) {
  Cluster& c = Make(3);
  Elect(c, 1);
  c.Isolate(3);
  c.raw(1).TransferLeader(NodeId(3));
  EXPECT_EQ(c.raw(1).raft().lead_transferee(), NodeId(3));
  c.TickElection(1);
  EXPECT_EQ(c.raw(1).raft().lead_transferee(), kNoNode);
  EXPECT_EQ(c.raw(1).Propose("ok"), ProposalResult::kAccepted);
}

TEST_F(RaftTest, FollowerForwardsProposalsUnlessDisabled) {
  Cluster& c = Make(3);
  Elect(c, 1);
  EXPECT_EQ(c.raw(2).Propose("fwd"), ProposalResult::kForwarded);
  c.Stabilize();
  EXPECT_EQ(c.node(3).applied.back().data(), "fwd");
  ClusterOptions opts;
  opts.disable_proposal_forwarding = true;
  Cluster& d = Make(3, opts);
  Elect(d, 1);
  EXPECT_EQ(d.raw(2).Propose("x"), ProposalResult::kDroppedForwardingDisabled);
}

TEST_F(RaftTest, LearnerReplicatesButNeverVotesOrCampaigns) {
  cluster_ = std::make_unique<Cluster>(ClusterOptions{}, &logger_);
  Cluster& c = *cluster_;
  for (uint64_t id = 1; id <= 3; ++id) c.AddNode(id, {1, 2}, {3});
  Elect(c, 1);
  c.raw(1).Propose("x");
  c.Stabilize();
  EXPECT_EQ(c.node(3).applied.back().data(), "x");
  c.raw(3).Campaign();
  c.Stabilize();
  EXPECT_EQ(c.raw(3).raft().role(), Role::kFollower);
  EXPECT_TRUE(c.raw(3).raft().is_learner());
}

TEST_F(RaftTest, JointConsensusAutoLeave) {
  Cluster& c = Make(3);
  // Joining nodes start from the cluster's bootstrap membership and replay
  // the log's conf changes (or are brought up by a snapshot).
  c.AddNode(4, {1, 2, 3});
  c.AddNode(5, {1, 2, 3});
  Elect(c, 1);
  ConfChange cc = Cluster::MakeConfChange("v4 v5 r1", CONF_CHANGE_TRANSITION_AUTO);
  EXPECT_EQ(c.raw(1).ProposeConfChange(cc), ProposalResult::kAccepted);
  c.Stabilize();
  // Node 1 steps down once removed; let a new leader finish the job.
  for (int round = 0; round < 50; ++round) {
    for (uint64_t id = 1; id <= 5; ++id) c.Tick(id);
    c.Stabilize();
  }
  // Entering joint then leaving it automatically; node 1 was removed and
  // stepped down.
  for (uint64_t id : {2u, 3u, 4u, 5u}) {
    EXPECT_EQ(c.node(id).conf_state.voters_outgoing_size(), 0) << id;
    EXPECT_EQ(c.node(id).conf_state.voters_size(), 4) << id;
  }
  EXPECT_NE(c.raw(1).raft().role(), Role::kLeader);
}

TEST_F(RaftTest, RemovedNodeCannotCampaign) {
  Cluster& c = Make(3);
  Elect(c, 1);
  c.raw(1).ProposeConfChange(Cluster::MakeConfChange("r3", CONF_CHANGE_TRANSITION_AUTO));
  c.Stabilize();
  ASSERT_EQ(c.node(3).conf_state.voters_size(), 2);
  const Term before = c.raw(3).raft().term();
  c.raw(3).Campaign();
  c.Stabilize();
  EXPECT_EQ(c.raw(3).raft().term(), before);
}

TEST_F(RaftTest, LeaderRemovalStepsDown) {
  Cluster& c = Make(3);
  Elect(c, 1);
  c.raw(1).ProposeConfChange(Cluster::MakeConfChange("r1", CONF_CHANGE_TRANSITION_AUTO));
  c.Stabilize();
  EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
  c.TickElection(2);
  c.Stabilize();
  EXPECT_TRUE(c.raw(2).raft().role() == Role::kLeader ||
              c.raw(3).raft().role() == Role::kLeader);
}

TEST_F(RaftTest, SlowFollowerAfterCompactionGetsSnapshot) {
  Cluster& c = Make(3);
  Elect(c, 1);
  c.Isolate(3);
  for (int i = 0; i < 10; ++i) c.raw(1).Propose("e" + std::to_string(i));
  c.Stabilize();
  ASSERT_TRUE(c.Compact(1, c.node(1).applied_index()).ok());
  c.Heal();
  c.TickHeartbeat(1);
  c.Stabilize();
  EXPECT_GE(c.node(3).base_index, Index(11));
  c.raw(1).ReportSnapshot(NodeId(3), true);
  c.raw(1).Propose("after");
  c.TickHeartbeat(1);
  c.Stabilize();
  EXPECT_EQ(c.node(3).applied_hash(), c.node(1).applied_hash());
}

// A lone voter waits for its first commit of the term too: restarted with a
// stored commit index that lags its log (the Host writes commit-only hard
// states lazily), it must not take that stale index as the read index.
TEST_F(RaftTest, LoneVoterReadIndexWaitsForFirstCommitOfTerm) {
  cluster_ = std::make_unique<Cluster>(ClusterOptions{}, &logger_);
  Cluster& c = *cluster_;
  c.AddNode(1, {1}, {}, /*log_terms=*/{1, 1, 1}, /*term=*/1);
  ASSERT_EQ(c.raw(1).raft().log().committed(), Index(0));
  c.raw(1).Campaign();
  for (int i = 0; i < 10 && c.raw(1).raft().role() != Role::kLeader; ++i) {
    if (!c.TakeReady(1)) c.PersistOne(1);
  }
  ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
  EXPECT_EQ(c.raw(1).ReadIndex("r1"), ProposalResult::kAccepted);
  c.Stabilize();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  // Its term's empty entry (index 4) committed everything before it.
  EXPECT_EQ(c.node(1).read_states[0].index, Index(4));
}

TEST_F(RaftTest, ReadIndexWaitsForFirstCommitOfTerm) {
  Cluster& c = Make(3);
  c.raw(1).Campaign();
  c.ProcessReady(1);
  c.DeliverAll();
  c.ProcessReady(2);
  c.ProcessReady(3);
  c.DeliverTo(1);
  ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
  EXPECT_EQ(c.raw(1).ReadIndex("r1"), ProposalResult::kAccepted);
  EXPECT_TRUE(c.node(1).read_states.empty());
  c.Stabilize();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0].index, Index(1));
  EXPECT_EQ(c.node(1).read_states[0].request_context, "r1");
}

TEST_F(RaftTest, LeaseReadAnswersAtOnce) {
  ClusterOptions opts;
  opts.check_quorum = true;
  opts.read_only_option = ReadOnlyOption::kLeaseBased;
  Cluster& c = Make(3, opts);
  Elect(c, 1);
  c.raw(2).ReadIndex("fol");
  c.raw(1).ReadIndex("lead");
  c.Stabilize();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  ASSERT_EQ(c.node(2).read_states.size(), 1u);
  EXPECT_EQ(c.node(2).read_states[0].request_context, "fol");
}

TEST_F(RaftTest, AppendTruncatingCommittedEntryIsRefused) {
  Cluster& c = Make(3);
  Elect(c, 1);
  c.raw(1).Propose("x");
  c.Stabilize();
  ASSERT_EQ(c.raw(2).raft().log().committed(), Index(2));
  Message m;
  m.set_type(MSG_APPEND);
  m.set_from(1);
  m.set_to(2);
  m.set_term(1);
  m.set_index(1);
  m.set_log_term(1);
  Entry* e = m.add_entries();
  e->set_index(2);
  e->set_term(1);
  e->set_data("evil");
  EXPECT_TRUE(c.raw(2).Step(m).ok());
  c.ProcessReady(2);
  EXPECT_EQ(c.node(2).applied.back().data(), "x");
  EXPECT_EQ(c.raw(2).raft().log().LastIndex(), Index(2));
}

TEST_F(RaftTest, HeartbeatCommitBeyondLogIsRefused) {
  Cluster& c = Make(3);
  Elect(c, 1);
  Message m;
  m.set_type(MSG_HEARTBEAT);
  m.set_from(1);
  m.set_to(2);
  m.set_term(1);
  m.set_commit(99);
  EXPECT_TRUE(c.raw(2).Step(m).ok());
  EXPECT_EQ(c.raw(2).raft().log().committed(), Index(1));
  c.raw(2).CheckInvariants();
}

TEST_F(RaftTest, FastRejectionHintSkipsConflictingTerm) {
  cluster_ = std::make_unique<Cluster>(ClusterOptions{}, &logger_);
  Cluster& c = *cluster_;
  c.AddNode(1, {1, 2, 3}, {}, {1, 1, 4, 4, 4, 4}, 4);
  c.AddNode(2, {1, 2, 3}, {}, {1, 1, 2, 2, 2, 2, 2, 2, 2}, 4);
  c.AddNode(3, {1, 2, 3}, {}, {1, 1, 4, 4, 4, 4}, 4);
  c.raw(1).Campaign();
  c.ProcessReady(1);
  c.DeliverAll();
  c.ProcessReady(3);
  c.DeliverTo(1);
  ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
  // Count append rounds until node 2 matches.
  int rejections = 0;
  for (int i = 0; i < 20; ++i) {
    c.ProcessReady(1);
    c.DeliverTo(2);
    c.ProcessReady(2);
    for (const Message& m : c.in_flight()) {
      if (m.from() == 2 && m.reject()) ++rejections;
    }
    c.DeliverTo(1);
  }
  c.Stabilize();
  EXPECT_LE(rejections, 2) << "one hint skips the whole term-2 run";
  EXPECT_EQ(c.raw(2).raft().log().LastIndex(), Index(7));
}

}  // namespace
}  // namespace blixard::raft
