#include "net/api/load_stats.h"

#include <vector>

#include "gtest/gtest.h"

namespace blixard::net {
namespace {

TEST(LoadStatsTest, EmptyRunIsAllZeros) {
  const LatencySummary s = Summarize({}, 1'000'000);
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.per_second, 0);
  EXPECT_EQ(s.slowest_us, 0);
  EXPECT_EQ(s.stddev_us, 0);
  EXPECT_EQ(Summarize({}, 0).per_second, 0);
}

TEST(LoadStatsTest, PopulationStddevAndThroughput) {
  // Mean 5, squared deviations 9+1+1+9 = 20, / 4 = 5: stddev sqrt(5)
  // (n, not n - 1, as etcd's report divides).
  const LatencySummary s = Summarize({2, 4, 6, 8}, 2'000'000);
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.seconds, 2.0);
  EXPECT_DOUBLE_EQ(s.per_second, 2.0);
  EXPECT_EQ(s.fastest_us, 2);
  EXPECT_EQ(s.slowest_us, 8);
  EXPECT_DOUBLE_EQ(s.mean_us, 5.0);
  EXPECT_NEAR(s.stddev_us, 2.2360679, 1e-6);
}

TEST(LoadStatsTest, PercentilesByNearestRank) {
  std::vector<int64_t> l;
  for (int64_t i = 1; i <= 1000; ++i) l.push_back(i);
  EXPECT_EQ(Percentile(l, 50), 500);
  EXPECT_EQ(Percentile(l, 90), 900);
  EXPECT_EQ(Percentile(l, 99.9), 999);
  EXPECT_EQ(Percentile(l, 100), 1000);
  EXPECT_EQ(Percentile({7}, 0.1), 7);
  const LatencySummary s = Summarize(l, 1);
  EXPECT_EQ(s.p50_us, 500);
  EXPECT_EQ(s.p99_us, 990);
  EXPECT_EQ(s.p999_us, 999);
}

}  // namespace
}  // namespace blixard::net
