#include "sim/checker/safety_checker.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::testing::HasSubstr;

const NodeId n1(1), n2(2), n3(3);

EntryDigest E(uint64_t index, uint64_t term, uint64_t hash) {
  return EntryDigest{Index(index), Term(term), hash};
}

class SafetyCheckerTest : public ::testing::Test {
 protected:
  void TearDown() override { checker_.CheckInvariants(); }
  void ExpectViolation(const char* property, const char* detail) {
    ASSERT_FALSE(checker_.ok());
    EXPECT_EQ(checker_.violation()->property, property);
    EXPECT_THAT(checker_.violation()->detail, HasSubstr(detail));
  }
  SafetyChecker checker_;
};

TEST_F(SafetyCheckerTest, HealthyReplicationPasses) {
  checker_.OnRole(n1, true, Term(1));
  for (NodeId n : {n1, n2, n3}) checker_.OnAppend(n, {E(1, 1, 10), E(2, 1, 20)});
  checker_.OnCommit(n1, Index(2));
  checker_.OnApply(n1, E(1, 1, 10));
  checker_.OnApply(n1, E(2, 1, 20));
  checker_.OnAcknowledge(n1, Index(2), Term(1));
  checker_.OnCommit(n2, Index(2));
  checker_.OnApply(n2, E(1, 1, 10));
  checker_.OnDigest(n1, Index(2), 0xabc);
  checker_.OnDigest(n2, Index(2), 0xabc);
  checker_.OnRole(n2, true, Term(2));
  EXPECT_TRUE(checker_.ok()) << checker_.violation()->detail;
  EXPECT_GT(checker_.checks(), 10u);
  EXPECT_EQ(checker_.committed_index(), Index(2));
}

TEST_F(SafetyCheckerTest, TwoLeadersInOneTerm) {
  checker_.OnRole(n1, true, Term(3));
  checker_.OnRole(n1, true, Term(3));  // the same leader again is fine
  EXPECT_TRUE(checker_.ok());
  checker_.SetTime(1234);
  checker_.OnRole(n2, true, Term(3));
  ExpectViolation("election safety", "already has leader n1");
  EXPECT_EQ(checker_.violation()->time_us, 1234);
  EXPECT_EQ(checker_.violation()->node, n2);
}

TEST_F(SafetyCheckerTest, SameIndexAndTermWithDifferentEntries) {
  checker_.OnAppend(n1, {E(1, 1, 10)});
  checker_.OnAppend(n2, {E(1, 1, 11)});
  ExpectViolation("log matching", "n2 holds (index 1, term 1");
}

TEST_F(SafetyCheckerTest, SameEntryAfterDifferentPrefixes) {
  checker_.OnAppend(n1, {E(1, 1, 10), E(2, 3, 30)});
  checker_.OnAppend(n2, {E(1, 2, 12), E(2, 3, 30)});
  ExpectViolation("log matching", "after term 2");
}

TEST_F(SafetyCheckerTest, LeaderWithoutACommittedEntry) {
  checker_.OnRole(n1, true, Term(1));
  checker_.OnAppend(n1, {E(1, 1, 10), E(2, 1, 20)});
  checker_.OnAppend(n2, {E(1, 1, 10)});
  checker_.OnCommit(n1, Index(2));
  checker_.OnRole(n2, true, Term(2));
  ExpectViolation("leader completeness", "without committed entry (index 2");
}

TEST_F(SafetyCheckerTest, LateWinOfAnOlderTermIsNotALeaderCompletenessBug) {
  // n2's votes for term 2 arrive after n1 committed in term 3: Raft only
  // promises committed entries to leaders of later terms.
  checker_.OnRole(n1, true, Term(3));
  checker_.OnAppend(n1, {E(1, 3, 10)});
  checker_.OnCommit(n1, Index(1));
  checker_.OnRole(n2, true, Term(2));
  EXPECT_TRUE(checker_.ok()) << checker_.violation()->detail;
  checker_.OnRole(n3, true, Term(4));
  ExpectViolation("leader completeness", "n3 became leader of term 4");
}

TEST_F(SafetyCheckerTest, OverwritingACommittedEntry) {
  checker_.OnAppend(n1, {E(1, 1, 10)});
  checker_.OnCommit(n1, Index(1));
  checker_.OnAppend(n1, {E(1, 2, 99)});
  ExpectViolation("committed entries never change", "overwrote committed");
}

TEST_F(SafetyCheckerTest, TruncatingAStaleUncommittedEntryIsFine) {
  checker_.OnAppend(n1, {E(1, 1, 10), E(2, 1, 20)});
  checker_.OnAppend(n2, {E(1, 1, 10), E(2, 2, 21)});
  checker_.OnCommit(n2, Index(2));
  checker_.OnAppend(n1, {E(2, 2, 21)});
  checker_.OnCommit(n1, Index(2));
  EXPECT_TRUE(checker_.ok()) << checker_.violation()->detail;
}

TEST_F(SafetyCheckerTest, CommitPastTheLog) {
  checker_.OnAppend(n1, {E(1, 1, 10)});
  checker_.OnCommit(n1, Index(2));
  ExpectViolation("committed entries never change", "past its last log index");
}

TEST_F(SafetyCheckerTest, ConflictingCommits) {
  checker_.OnAppend(n1, {E(1, 1, 10)});
  checker_.OnCommit(n1, Index(1));
  checker_.OnAppend(n2, {E(1, 2, 12)});
  checker_.OnCommit(n2, Index(1));
  ExpectViolation("committed entries never change", "was committed before");
}

TEST_F(SafetyCheckerTest, ApplyingSomethingElse) {
  checker_.OnAppend(n1, {E(1, 1, 10)});
  checker_.OnCommit(n1, Index(1));
  checker_.OnApply(n2, E(1, 1, 11));
  ExpectViolation("state machine safety", "n2 applied");
}

TEST_F(SafetyCheckerTest, ApplyingBeforeCommit) {
  checker_.OnAppend(n1, {E(1, 1, 10)});
  checker_.OnApply(n1, E(1, 1, 10));
  ExpectViolation("state machine safety", "before any node knew it committed");
}

TEST_F(SafetyCheckerTest, DigestsDisagree) {
  checker_.OnDigest(n1, Index(5), 1);
  checker_.OnDigest(n2, Index(6), 2);
  EXPECT_TRUE(checker_.ok());
  checker_.OnDigest(n3, Index(5), 3);
  ExpectViolation("state machine safety", "at applied index 5");
}

TEST_F(SafetyCheckerTest, AcknowledgedBeforeCommit) {
  checker_.OnAppend(n1, {E(1, 1, 10)});
  checker_.OnAcknowledge(n1, Index(1), Term(1));
  ExpectViolation("acknowledged writes durable", "before it was committed");
}

TEST_F(SafetyCheckerTest, AcknowledgedWriteReplacedLater) {
  // n1 acknowledges (index 2, term 1) as committed while the checker has
  // only seen index 1 committed, then index 2 commits with another term.
  checker_.OnAppend(n1, {E(1, 1, 10)});
  checker_.OnCommit(n1, Index(1));
  checker_.OnAppend(n2, {E(1, 1, 10), E(2, 2, 22)});
  checker_.OnCommit(n2, Index(2));
  checker_.OnAcknowledge(n1, Index(2), Term(1));
  ExpectViolation("acknowledged writes durable", "term 1 but (index 2, term 2");
}

TEST_F(SafetyCheckerTest, SnapshotsAndRecovery) {
  checker_.OnAppend(n1, {E(1, 1, 10), E(2, 1, 20), E(3, 1, 30)});
  checker_.OnCommit(n1, Index(3));
  checker_.OnSnapshot(n1, Index(2), Term(1), /*reset_log=*/false);
  checker_.OnRole(n1, true, Term(2));  // holds 3, and 1-2 via the snapshot
  checker_.OnSnapshot(n2, Index(3), Term(1), /*reset_log=*/true);
  checker_.OnRecover(n3, Index(0), Term(0), {E(1, 1, 10)});
  checker_.OnAppend(n3, {E(2, 1, 20)});
  EXPECT_TRUE(checker_.ok()) << checker_.violation()->detail;
  checker_.OnSnapshot(n3, Index(3), Term(7), /*reset_log=*/true);
  ExpectViolation("committed entries never change", "snapshot at index 3 term 7");
}

// Figure 8: a leader of term 3 counts replicas of a term-2 entry.
TEST_F(SafetyCheckerTest, LeaderCommitsAnOldTermEntryByCounting) {
  checker_.OnRole(n1, true, Term(2));
  checker_.OnAppend(n1, {E(1, 2, 10)});
  checker_.OnRole(n1, false, Term(3));
  checker_.OnRole(n2, true, Term(3));
  checker_.OnAppend(n2, {E(1, 2, 10), E(2, 3, 20)});
  checker_.OnCommit(n2, Index(1));
  ExpectViolation("current-term commits", "leader of term 3");
}

// Committing its own term's entry commits the old ones before it; a leader
// whose commit index reaches what others already reported counted nothing.
TEST_F(SafetyCheckerTest, CurrentTermCommitsAndKnownCommitsAreFine) {
  checker_.OnRole(n1, true, Term(2));
  checker_.OnAppend(n1, {E(1, 2, 10), E(2, 2, 20)});
  checker_.OnCommit(n1, Index(1));
  checker_.OnRole(n1, false, Term(3));
  for (NodeId n : {n2, n3}) checker_.OnAppend(n, {E(1, 2, 10), E(2, 2, 20)});
  // A follower learning an old-term commit did not count anything.
  checker_.OnCommit(n3, Index(2));
  checker_.OnRole(n2, true, Term(3));
  checker_.OnCommit(n2, Index(2));  // already known committed
  checker_.OnAppend(n2, {E(3, 3, 30)});
  checker_.OnCommit(n2, Index(3));  // its own term: commits the rest too
  EXPECT_TRUE(checker_.ok()) << checker_.violation()->detail;
  // A leader that restarts leads nothing: its recovered commit is fine.
  checker_.OnAppend(n1, {E(3, 3, 30)});
  checker_.OnRole(n1, true, Term(4));
  checker_.OnRecover(n1, Index(0), Term(0), {E(1, 2, 10), E(2, 2, 20), E(3, 3, 30)});
  checker_.OnCommit(n1, Index(3));
  EXPECT_TRUE(checker_.ok()) << checker_.violation()->detail;
}

TEST_F(SafetyCheckerTest, TwoVotesInOneTerm) {
  checker_.OnVoteGranted(n3, n1, Term(4));
  checker_.OnVoteGranted(n3, n1, Term(4));  // a repeated request: same vote
  checker_.OnVoteGranted(n3, n2, Term(5));
  EXPECT_TRUE(checker_.ok());
  checker_.OnVoteGranted(n3, n1, Term(5));
  ExpectViolation("vote safety", "n3 granted its vote in term 5 to n1 after granting it to n2");
}

TEST_F(SafetyCheckerTest, RestartMustKeepTheGrantedVote) {
  checker_.OnVoteGranted(n3, n1, Term(4));
  checker_.OnBoot(n3, Term(4), n1);
  checker_.OnBoot(n3, Term(6), NodeId(0));  // a later term: the vote may go
  checker_.OnBoot(n2, Term(1), NodeId(0));  // never voted
  EXPECT_TRUE(checker_.ok());
  checker_.OnBoot(n3, Term(4), NodeId(0));
  ExpectViolation("votes durable", "restarted in term 4 with vote n0");
}

TEST_F(SafetyCheckerTest, RestartMustKeepTheTermOfTheGrantedVote) {
  checker_.OnVoteGranted(n3, n1, Term(4));
  checker_.OnBoot(n3, Term(3), n1);
  ExpectViolation("votes durable", "restarted in term 3 after granting its vote in term 4");
}

TEST_F(SafetyCheckerTest, FirstViolationIsKept) {
  checker_.OnRole(n1, true, Term(1));
  checker_.OnRole(n2, true, Term(1));
  checker_.OnRole(n3, true, Term(1));
  ExpectViolation("election safety", "n2 became leader");
}

}  // namespace
}  // namespace blixard::sim
