#include "core/raft/storage.h"

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;

std::vector<Entry> Ents(uint64_t from, std::vector<uint64_t> terms) {
  std::vector<Entry> out;
  for (uint64_t t : terms) {
    Entry e;
    e.set_index(from++);
    e.set_term(t);
    e.set_data("abcd");
    out.push_back(e);
  }
  return out;
}

TEST(MemoryStorageTest, AppendTruncatesConflictingSuffix) {
  MemoryStorage s;
  ASSERT_THAT(s.Append(Ents(1, {1, 1, 2})), IsOk());
  ASSERT_THAT(s.Append(Ents(2, {3})), IsOk());
  EXPECT_EQ(s.LastIndex(), Index(2));
  EXPECT_EQ(*s.TermAt(Index(2)), Term(3));
  EXPECT_THAT(s.Append(Ents(5, {3})), StatusIs(absl::StatusCode::kInvalidArgument));
  s.CheckInvariants();
}

TEST(MemoryStorageTest, EntriesRespectByteLimitButReturnOne) {
  MemoryStorage s;
  ASSERT_THAT(s.Append(Ents(1, {1, 1, 1, 1})), IsOk());
  EXPECT_EQ(s.Entries(Index(1), Index(5), 0)->size(), 1u);
  EXPECT_EQ(s.Entries(Index(1), Index(5), 8)->size(), 2u);
  EXPECT_EQ(s.Entries(Index(1), Index(5), kNoLimit)->size(), 4u);
  EXPECT_TRUE(raft::IsUnavailable(s.Entries(Index(1), Index(7), kNoLimit).status()));
}

TEST(MemoryStorageTest, CompactAndSnapshot) {
  MemoryStorage s;
  ASSERT_THAT(s.Append(Ents(1, {1, 1, 2, 2, 3})), IsOk());
  ConfState cs;
  cs.add_voters(1);
  ASSERT_THAT(s.CreateSnapshot(Index(3), &cs, "state"), IsOk());
  ASSERT_THAT(s.Compact(Index(3)), IsOk());
  EXPECT_EQ(s.FirstIndex(), Index(4));
  EXPECT_EQ(*s.TermAt(Index(3)), Term(2));
  EXPECT_TRUE(IsCompacted(s.TermAt(Index(2)).status()));
  EXPECT_TRUE(IsCompacted(s.Entries(Index(3), Index(4), kNoLimit).status()));
  EXPECT_THAT(s.Compact(Index(2)), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(s.GetSnapshot()->metadata().index(), 3u);
  s.CheckInvariants();
}

TEST(MemoryStorageTest, ApplySnapshotResetsLogAndRefusesOldOnes) {
  MemoryStorage s;
  ASSERT_THAT(s.Append(Ents(1, {1, 1})), IsOk());
  Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(4);
  ASSERT_THAT(s.ApplySnapshot(snap), IsOk());
  EXPECT_EQ(s.FirstIndex(), Index(11));
  EXPECT_EQ(s.LastIndex(), Index(10));
  EXPECT_THAT(s.ApplySnapshot(snap), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(s.Bootstrap(ConfState()), StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace blixard::raft
