#include "core/raft/quorum.h"

#include <map>
#include <optional>

#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

MajorityConfig Voters(std::vector<uint64_t> ids) {
  std::vector<NodeId> v;
  for (uint64_t id : ids) v.push_back(NodeId(id));
  return MajorityConfig(v);
}

TEST(QuorumTest, CommittedIndexIsTheMajorityMedian) {
  std::map<uint64_t, uint64_t> acked = {{1, 5}, {2, 3}, {3, 9}};
  auto fn = [&](NodeId id) { return Index(acked[id.value()]); };
  EXPECT_EQ(Voters({1, 2, 3}).CommittedIndex(fn), Index(5));
  EXPECT_EQ(Voters({1}).CommittedIndex(fn), Index(5));
  EXPECT_EQ(Voters({1, 2}).CommittedIndex(fn), Index(3));
  acked[4] = 0;
  acked[5] = 0;
  EXPECT_EQ(Voters({1, 2, 3, 4, 5}).CommittedIndex(fn), Index(3));
}

TEST(QuorumTest, EmptyConfigNeverHoldsBackJoint) {
  auto fn = [](NodeId) { return Index(7); };
  JointConfig j;
  j.incoming() = Voters({1, 2, 3});
  EXPECT_EQ(j.CommittedIndex(fn), Index(7));
  EXPECT_EQ(MajorityConfig().Vote([](NodeId) { return std::optional<bool>(); }),
            VoteResult::kWon);
}

TEST(QuorumTest, JointCommitNeedsBothMajorities) {
  std::map<uint64_t, uint64_t> acked = {{1, 10}, {2, 10}, {3, 1}, {4, 1}, {5, 1}};
  auto fn = [&](NodeId id) { return Index(acked[id.value()]); };
  JointConfig j;
  j.incoming() = Voters({1, 2, 3});
  j.outgoing() = Voters({3, 4, 5});
  EXPECT_EQ(j.CommittedIndex(fn), Index(1));
  acked[4] = 10;
  EXPECT_EQ(j.CommittedIndex(fn), Index(1)) << "3 and 5 still hold it back";
  acked[5] = 10;
  EXPECT_EQ(j.CommittedIndex(fn), Index(10));
}

TEST(QuorumTest, VoteOutcomes) {
  std::map<uint64_t, bool> votes;
  auto fn = [&](NodeId id) -> std::optional<bool> {
    auto it = votes.find(id.value());
    if (it == votes.end()) return std::nullopt;
    return it->second;
  };
  MajorityConfig c = Voters({1, 2, 3});
  EXPECT_EQ(c.Vote(fn), VoteResult::kPending);
  votes[1] = true;
  EXPECT_EQ(c.Vote(fn), VoteResult::kPending);
  votes[2] = false;
  EXPECT_EQ(c.Vote(fn), VoteResult::kPending);
  votes[3] = false;
  EXPECT_EQ(c.Vote(fn), VoteResult::kLost);
  votes[3] = true;
  EXPECT_EQ(c.Vote(fn), VoteResult::kWon);
  JointConfig j;
  j.incoming() = c;
  j.outgoing() = Voters({4, 5, 6});
  EXPECT_EQ(j.Vote(fn), VoteResult::kPending);
  votes[4] = false;
  votes[5] = false;
  EXPECT_EQ(j.Vote(fn), VoteResult::kLost);
}

TEST(QuorumTest, MajorityConfigStaysSortedAndUnique) {
  MajorityConfig c = Voters({3, 1, 2, 3});
  EXPECT_EQ(c.size(), 3u);
  c.Insert(NodeId(0 + 5));
  c.Insert(NodeId(4));
  c.Erase(NodeId(1));
  EXPECT_EQ(c.ToString(), "(2 3 4 5)");
  c.CheckInvariants();
}

}  // namespace
}  // namespace blixard::raft
