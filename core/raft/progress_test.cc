#include "core/raft/progress.h"

#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

Progress Make(uint64_t match, uint64_t next) {
  return Progress(Index(match), Index(next), 4, 0, false);
}

TEST(ProgressTest, ProbeSendsOneMessageAtATime) {
  Progress pr = Make(0, 5);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(2, 20);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.next(), Index(5)) << "probe does not advance next";
  EXPECT_TRUE(pr.MaybeUpdate(Index(6)));
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_EQ(pr.next(), Index(7));
}

TEST(ProgressTest, ReplicatePipelinesUntilWindowFull) {
  Progress pr = Make(5, 6);
  pr.BecomeReplicate();
  for (int i = 0; i < 4; ++i) pr.SentEntries(1, 1);
  EXPECT_EQ(pr.next(), Index(10));
  EXPECT_TRUE(pr.IsPaused());
  pr.MaybeUpdate(Index(7));
  pr.inflights().FreeLE(Index(7));
  pr.set_msg_app_flow_paused(pr.inflights().Full());
  EXPECT_FALSE(pr.IsPaused());
  pr.CheckInvariants();
}

TEST(ProgressTest, StaleRejectionIsIgnored) {
  Progress pr = Make(5, 10);
  pr.BecomeReplicate();
  EXPECT_FALSE(pr.MaybeDecrTo(Index(4), Index(4)));
  EXPECT_TRUE(pr.MaybeDecrTo(Index(8), Index(6)));
  EXPECT_EQ(pr.next(), Index(6));
  Progress probe = Make(0, 10);
  EXPECT_FALSE(probe.MaybeDecrTo(Index(5), Index(3))) << "not the probe in flight";
  EXPECT_TRUE(probe.MaybeDecrTo(Index(9), Index(3)));
  EXPECT_EQ(probe.next(), Index(4)) << "the hint skips ahead";
}

TEST(ProgressTest, RejectionBelowMatchDoesNotResendTheSameProbe) {
  // The follower acknowledged 4, then lost its log (a wiped disk): it
  // rejects the probe at 4 with an empty log. Probing cannot go below
  // match, so the probe must not be resent at once (it would ping-pong).
  Progress pr = Make(4, 5);
  pr.SentEntries(1, 10);
  ASSERT_TRUE(pr.IsPaused());
  EXPECT_FALSE(pr.MaybeDecrTo(Index(4), Index(0)));
  EXPECT_EQ(pr.next(), Index(5));
  EXPECT_TRUE(pr.IsPaused()) << "the probe stays paused until a heartbeat response";
}

TEST(ProgressTest, SnapshotStatePausesAndResumesAfterSnapshot) {
  Progress pr = Make(2, 3);
  pr.BecomeSnapshot(Index(20));
  EXPECT_TRUE(pr.IsPaused());
  pr.BecomeProbe();
  EXPECT_EQ(pr.next(), Index(21));
}

TEST(ProgressTrackerTest, CommittedAndQuorumActive) {
  ProgressTracker t(4, 0);
  for (uint64_t id = 1; id <= 3; ++id) {
    t.config().voters.incoming().Insert(NodeId(id));
    t.progress().emplace(NodeId(id), Make(id * 2, id * 2 + 1));
  }
  EXPECT_EQ(t.Committed(), Index(4));
  EXPECT_FALSE(t.QuorumActive());
  t.Find(NodeId(1))->set_recent_active(true);
  t.Find(NodeId(3))->set_recent_active(true);
  EXPECT_TRUE(t.QuorumActive());
  t.RecordVote(NodeId(1), true);
  t.RecordVote(NodeId(2), false);
  t.RecordVote(NodeId(1), false);  // first vote counts
  ProgressTracker::Tally tally = t.TallyVotes();
  EXPECT_EQ(tally.granted, 1u);
  EXPECT_EQ(tally.rejected, 1u);
  EXPECT_EQ(tally.result, VoteResult::kPending);
  t.CheckInvariants();
}

}  // namespace
}  // namespace blixard::raft
