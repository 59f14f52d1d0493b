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

TEST(UnstableTest, StableToIgnoresWritesHandedOutBeforeATruncation) {
  NullLogger logger;
  Unstable u(Index(5), &logger);
  u.TruncateAndAppend(Ents(5, {1, 1, 1}));
  const uint64_t first_write = u.epoch();
  u.AcceptInProgress();
  u.TruncateAndAppend(Ents(6, {2}));  // replaces 6..7 while 5..7 is in flight
  EXPECT_EQ(u.offset_in_progress(), Index(6));
  EXPECT_NE(u.epoch(), first_write);
  u.StableTo(Index(7), Term(1), first_write);  // stale: entry 7 is gone
  u.StableTo(Index(5), Term(1), first_write);  // stale too: written before the cut
  EXPECT_EQ(u.offset(), Index(5));
  // The write of the replacement (handed out now) reports for everything
  // up to it.
  const uint64_t second_write = u.epoch();
  u.AcceptInProgress();
  u.StableTo(Index(6), Term(2), second_write);
  EXPECT_EQ(u.offset(), Index(7));
  EXPECT_FALSE(u.HasNextEntries());
  u.CheckInvariants();
}

// The ABA case raft_step_fuzzer found: (2, t1) written, replaced by (2, t5)
// in a later write still in flight, then accepted again as (2, t1). The
// first write's report must not mark the new (2, t1) stable: the queued
// (2, t5) write will overwrite storage, so (2, t1) must be written again.
TEST(UnstableTest, AReappearingEntryIsNotMarkedStableByAnOlderWrite) {
  NullLogger logger;
  Unstable u(Index(2), &logger);
  u.TruncateAndAppend(Ents(2, {1}));
  const uint64_t write_a = u.epoch();  // writes (2, t1)
  u.AcceptInProgress();
  u.TruncateAndAppend(Ents(2, {5}));
  const uint64_t write_b = u.epoch();  // writes (2, t5)
  u.AcceptInProgress();
  u.TruncateAndAppend(Ents(2, {1, 1}));  // (2, t1), (3, t1) again
  EXPECT_EQ(u.offset_in_progress(), Index(2));
  u.StableTo(Index(2), Term(1), write_a);
  u.StableTo(Index(2), Term(5), write_b);
  EXPECT_EQ(u.offset(), Index(2));
  std::vector<Entry> next;
  u.NextEntries(&next);
  ASSERT_EQ(next.size(), 2u);  // the next write carries (2, t1) again
  EXPECT_EQ(next[0].index(), 2u);
  EXPECT_EQ(next[0].term(), 1u);
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
