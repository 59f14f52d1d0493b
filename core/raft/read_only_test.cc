#include "core/raft/read_only.h"

#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

Message Req(const std::string& ctx) {
  Message m;
  m.set_type(MSG_READ_INDEX);
  m.add_entries()->set_data(ctx);
  return m;
}

TEST(ReadOnlyTest, AdvanceAnswersEverythingUpToTheAckedContext) {
  ReadOnly ro(ReadOnlyOption::kSafe, 8);
  EXPECT_TRUE(ro.AddRequest(Index(3), Req("a")));
  EXPECT_TRUE(ro.AddRequest(Index(4), Req("b")));
  EXPECT_FALSE(ro.AddRequest(Index(5), Req("a"))) << "duplicate";
  EXPECT_EQ(ro.LastPendingRequestContext(), "b");
  const std::set<NodeId>* acks = ro.RecvAck(NodeId(2), "b");
  ASSERT_NE(acks, nullptr);
  EXPECT_EQ(acks->size(), 1u);
  EXPECT_EQ(ro.RecvAck(NodeId(2), "zzz"), nullptr);
  std::vector<ReadOnly::Pending> done = ro.Advance("b");
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].index, Index(3));
  EXPECT_EQ(ro.pending_count(), 0u);
  ro.CheckInvariants();
}

TEST(ReadOnlyTest, QueueIsBounded) {
  ReadOnly ro(ReadOnlyOption::kSafe, 2);
  EXPECT_TRUE(ro.AddRequest(Index(1), Req("a")));
  EXPECT_TRUE(ro.AddRequest(Index(1), Req("b")));
  EXPECT_TRUE(ro.Full());
  EXPECT_FALSE(ro.AddRequest(Index(1), Req("c")));
}

}  // namespace
}  // namespace blixard::raft
