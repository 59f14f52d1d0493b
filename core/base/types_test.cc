#include "core/base/types.h"

#include <sstream>
#include <type_traits>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace blixard {
namespace {

TEST(TypesTest, TermsAndIndexesAreDistinctTypes) {
  static_assert(!std::is_convertible_v<Term, Index>);
  static_assert(!std::is_convertible_v<Index, Term>);
  static_assert(!std::is_convertible_v<uint64_t, Term>);
  static_assert(!std::is_convertible_v<NodeId, uint64_t>);
  EXPECT_EQ(Term(3).Next(), Term(4));
  EXPECT_LT(Index(2), Index(3));
}

TEST(TypesTest, IndexArithmeticCountsEntries) {
  EXPECT_EQ(Index(5) + 3, Index(8));
  EXPECT_EQ(Index(8).Since(Index(5)), 3u);
  EXPECT_EQ(Index(1).Prev(), Index(0));
}

TEST(TypesTest, PrintsWithAPrefix) {
  std::ostringstream out;
  out << Term(2) << " " << Index(9) << " " << NodeId(3);
  EXPECT_EQ(out.str(), "t2 i9 n3");
}

TEST(TypesTest, NoNodeIsZero) {
  EXPECT_TRUE(kNoNode.is_none());
  EXPECT_FALSE(NodeId(1).is_none());
}

TEST(TypesTest, Hashable) {
  absl::flat_hash_set<NodeId> ids = {NodeId(1), NodeId(2), NodeId(1)};
  EXPECT_EQ(ids.size(), 2u);
}

TEST(TypesTest, LimitsFitSignedSixtyFourBits) {
  EXPECT_EQ(kTermMax, uint64_t{9223372036854775807u});
  EXPECT_EQ(kIndexMax + 1, uint64_t{9223372036854775807u});
  EXPECT_EQ(Term(kTermMax - 1).Next(), Term(kTermMax));
  // An exclusive end one past the last possible entry.
  EXPECT_EQ(Index(kIndexMax).Next(), Index(kIndexMax + 1));
  EXPECT_EQ(Index(kIndexMax - 2) + 3, Index(kIndexMax + 1));
}

TEST(TypesDeathTest, PassingALimitIsABugNotAWrap) {
  EXPECT_DEATH((void)Term(kTermMax).Next(), "term would pass kTermMax");
  EXPECT_DEATH((void)Term(UINT64_MAX).Next(), "term would pass kTermMax");
  EXPECT_DEATH((void)Index(kIndexMax + 1).Next(), "index would pass kIndexMax");
  EXPECT_DEATH((void)Index(UINT64_MAX).Next(), "index would pass kIndexMax");
  EXPECT_DEATH((void)(Index(kIndexMax) + 2), "would pass kIndexMax");
  EXPECT_DEATH((void)(Index(1) + UINT64_MAX), "would pass kIndexMax");
}

TEST(TypesDeathTest, NegativeDistancesAreBugs) {
  EXPECT_DEATH((void)Index(0).Prev(), "no predecessor");
  EXPECT_DEATH((void)Index(2).Since(Index(3)), "negative");
}

}  // namespace
}  // namespace blixard
