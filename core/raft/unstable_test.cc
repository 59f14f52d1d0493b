#include "core/raft/unstable.h"

#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

std::vector<Entry> Ents(uint64_t from, std::vector<uint64_t> terms) {
  std::vector<Entry> out;
  for (uint64_t t : terms) {
    Entry e;
    e.set_index(from++);
    e.set_term(t);
    out.push_back(e);
  }
  return out;
}

TEST(UnstableTest, StableToIgnoresReplacedEntries) {
  NullLogger logger;
  Unstable u(Index(5), &logger);
  u.TruncateAndAppend(Ents(5, {1, 1, 1}));
  u.AcceptInProgress();
  u.TruncateAndAppend(Ents(6, {2}));  // replaces 6..7 while 5..7 is in flight
  EXPECT_EQ(u.offset_in_progress(), Index(6));
  u.StableTo(Index(7), Term(1));  // stale report: entry 7 is gone
  EXPECT_EQ(u.offset(), Index(5));
  u.StableTo(Index(5), Term(1));
  EXPECT_EQ(u.offset(), Index(6));
  EXPECT_TRUE(u.HasNextEntries());
  u.CheckInvariants();
}

TEST(UnstableTest, RestoreReplacesEverything) {
  NullLogger logger;
  Unstable u(Index(1), &logger);
  u.TruncateAndAppend(Ents(1, {1, 1}));
  Snapshot s;
  s.mutable_metadata()->set_index(9);
  s.mutable_metadata()->set_term(3);
  u.Restore(s);
  EXPECT_EQ(u.offset(), Index(10));
  EXPECT_EQ(*u.MaybeTerm(Index(9)), Term(3));
  EXPECT_FALSE(u.MaybeTerm(Index(1)).has_value());
  ASSERT_NE(u.NextSnapshot(), nullptr);
  u.AcceptInProgress();
  EXPECT_EQ(u.NextSnapshot(), nullptr);
  u.StableSnapTo(Index(9));
  EXPECT_FALSE(u.snapshot().has_value());
}

}  // namespace
}  // namespace blixard::raft
