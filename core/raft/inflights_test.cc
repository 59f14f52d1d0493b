#include "core/raft/inflights.h"

#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

TEST(InflightsTest, FullByCount) {
  Inflights in(3, 0);
  in.Add(Index(1), 10);
  in.Add(Index(2), 10);
  EXPECT_FALSE(in.Full());
  in.Add(Index(5), 10);
  EXPECT_TRUE(in.Full());
  in.FreeLE(Index(2));
  EXPECT_EQ(in.count(), 1u);
  EXPECT_FALSE(in.Full());
  in.CheckInvariants();
}

TEST(InflightsTest, FullByBytes) {
  Inflights in(100, 25);
  in.Add(Index(1), 10);
  EXPECT_FALSE(in.Full());
  in.Add(Index(2), 15);
  EXPECT_TRUE(in.Full());
  in.FreeLE(Index(1));
  EXPECT_EQ(in.bytes(), 15u);
  EXPECT_FALSE(in.Full());
}

TEST(InflightsTest, FreeBelowFirstIsNoOpAndResetEmpties) {
  Inflights in(4, 0);
  in.Add(Index(5), 1);
  in.FreeLE(Index(4));
  EXPECT_EQ(in.count(), 1u);
  in.Reset();
  EXPECT_EQ(in.count(), 0u);
  EXPECT_EQ(in.bytes(), 0u);
}

}  // namespace
}  // namespace blixard::raft
