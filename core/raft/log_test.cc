#include "core/raft/log.h"

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

google::protobuf::RepeatedPtrField<Entry> Ents(uint64_t from,
                                               std::vector<uint64_t> terms) {
  google::protobuf::RepeatedPtrField<Entry> out;
  for (uint64_t t : terms) {
    Entry* e = out.Add();
    e->set_index(from++);
    e->set_term(t);
  }
  return out;
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<Entry> stored;
    for (uint64_t i = 1; i <= 3; ++i) {
      Entry e;
      e.set_index(i);
      e.set_term(i);
      stored.push_back(e);
    }
    ASSERT_TRUE(storage_.Append(stored).ok());
  }
  NullLogger logger_;
  MemoryStorage storage_;
};

TEST_F(LogTest, MaybeAppendMatchesTruncatesAndCommits) {
  RaftLog log(&storage_, &logger_);
  Index last;
  auto ents = Ents(3, {4, 4});
  EXPECT_EQ(log.MaybeAppend(Index(2), Term(2), Index(10), &ents, &last),
            RaftLog::AppendResult::kAppended);
  EXPECT_EQ(last, Index(4));
  EXPECT_EQ(log.committed(), Index(4));
  EXPECT_EQ(log.LastIndex(), Index(4));
  EXPECT_EQ(*log.TermAt(Index(3)), Term(4));
  auto bad = Ents(4, {5});
  EXPECT_EQ(log.MaybeAppend(Index(3), Term(3), Index(0), &bad, &last),
            RaftLog::AppendResult::kMismatch);
}

TEST_F(LogTest, AppendOverCommittedEntryIsRefused) {
  RaftLog log(&storage_, &logger_);
  log.CommitTo(Index(3));
  Index last;
  auto ents = Ents(2, {9});
  EXPECT_EQ(log.MaybeAppend(Index(1), Term(1), Index(0), &ents, &last),
            RaftLog::AppendResult::kRefused);
  EXPECT_EQ(*log.TermAt(Index(2)), Term(2));
  log.CheckInvariants();
}

TEST_F(LogTest, FindConflictByTermSkipsWholeTerms) {
  RaftLog log(&storage_, &logger_);
  EXPECT_EQ(log.FindConflictByTerm(Index(3), Term(2)).first, Index(2));
  EXPECT_EQ(log.FindConflictByTerm(Index(3), Term(0)).first, Index(0));
  EXPECT_EQ(log.FindConflictByTerm(Index(3), Term(5)).first, Index(3));
}

TEST_F(LogTest, UpToDateComparesTermThenIndex) {
  RaftLog log(&storage_, &logger_);
  EXPECT_TRUE(log.IsUpToDate(Index(1), Term(4)));
  EXPECT_TRUE(log.IsUpToDate(Index(3), Term(3)));
  EXPECT_FALSE(log.IsUpToDate(Index(2), Term(3)));
  EXPECT_FALSE(log.IsUpToDate(Index(9), Term(2)));
}

TEST_F(LogTest, OnlyDurableCommittedEntriesAreHandedOut) {
  RaftLog log(&storage_, &logger_);
  std::vector<Entry> more;
  Entry e;
  e.set_index(4);
  e.set_term(3);
  more.push_back(e);
  log.Append(std::move(more));
  log.CommitTo(Index(4));
  std::vector<Entry> ents = log.NextCommittedEntries(kNoLimit);
  ASSERT_EQ(ents.size(), 3u) << "entry 4 is committed but not durable";
  EXPECT_EQ(ents.back().index(), 3u);
}

TEST_F(LogTest, SliceSpansStorageAndUnstableWithLimit) {
  RaftLog log(&storage_, &logger_);
  std::vector<Entry> more(2);
  more[0].set_index(4);
  more[0].set_term(3);
  more[1].set_index(5);
  more[1].set_term(3);
  log.Append(std::move(more));
  auto all = log.Slice(Index(2), Index(6), kNoLimit);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4u);
}

}  // namespace
}  // namespace blixard::raft
