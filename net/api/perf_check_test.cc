#include "net/api/perf_check.h"

#include <map>
#include <string>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::net {
namespace {

using ::testing::ElementsAre;

LatencySummary Summary(double per_second, int64_t slowest_us, double stddev_us) {
  LatencySummary s;
  s.count = 1;
  s.per_second = per_second;
  s.slowest_us = slowest_us;
  s.stddev_us = stddev_us;
  return s;
}

TEST(PerfCheckTest, LoadsAreEtcds) {
  ASSERT_OK_AND_ASSIGN(PerfLoad s, PerfLoadNamed("s"));
  EXPECT_EQ(s.rate_per_second, 150u);
  EXPECT_EQ(s.clients, 50);
  EXPECT_EQ(s.duration_us, 60 * kMicrosPerSecond);
  ASSERT_OK_AND_ASSIGN(PerfLoad m, PerfLoadNamed("medium"));
  EXPECT_EQ(m.name, "m");
  EXPECT_EQ(m.rate_per_second, 1000u);
  EXPECT_EQ(m.clients, 200);
  ASSERT_OK_AND_ASSIGN(PerfLoad l, PerfLoadNamed("large"));
  EXPECT_EQ(l.rate_per_second, 8000u);
  EXPECT_EQ(l.clients, 500);
  ASSERT_OK_AND_ASSIGN(PerfLoad xl, PerfLoadNamed("xLarge"));
  EXPECT_EQ(xl.name, "xl");
  EXPECT_EQ(xl.rate_per_second, 15000u);
  EXPECT_EQ(xl.clients, 1000);
  EXPECT_EQ(PerfLoadNamed("xxl").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PerfCheckTest, AllWithinBoundsPasses) {
  const PerfLoad load = *PerfLoadNamed("m");
  const PerfVerdict v = JudgePerf(load, Summary(974.2, 468'174, 28'241), {});
  EXPECT_TRUE(v.pass);
  EXPECT_THAT(v.lines, ElementsAre("PASS: Throughput is 975 writes/s",
                                   "PASS: Slowest request took 0.468174s",
                                   "PASS: Stddev is 0.028241s", "PASS"));
}

TEST(PerfCheckTest, ThroughputMustBeAboveNinetyPercent) {
  const PerfLoad load = *PerfLoadNamed("l");  // 8,000/s: 90% is 7,200
  EXPECT_FALSE(JudgePerf(load, Summary(7200.0, 1, 1), {}).pass);  // etcd: <= 0.9 fails
  EXPECT_TRUE(JudgePerf(load, Summary(7200.5, 1, 1), {}).pass);
  const PerfVerdict low = JudgePerf(load, Summary(6490.3, 204'441, 23'631), {});
  EXPECT_THAT(low.lines, ElementsAre("FAIL: Throughput too low: 6491 writes/s",
                                     "PASS: Slowest request took 0.204441s",
                                     "PASS: Stddev is 0.023631s", "FAIL"));
}

TEST(PerfCheckTest, SlowestAndStddevBoundsAreInclusive) {
  const PerfLoad load = *PerfLoadNamed("s");
  EXPECT_TRUE(JudgePerf(load, Summary(150, 500'000, 100'000), {}).pass);
  const PerfVerdict slow = JudgePerf(load, Summary(150, 500'001, 100'000), {});
  EXPECT_FALSE(slow.pass);
  EXPECT_EQ(slow.lines[1], "FAIL: Slowest request took too long: 0.500001s");
  const PerfVerdict spread = JudgePerf(load, Summary(150, 1, 100'001), {});
  EXPECT_FALSE(spread.pass);
  EXPECT_EQ(spread.lines[2], "FAIL: Stddev too high: 0.100001s");
  EXPECT_EQ(spread.lines.back(), "FAIL");
}

TEST(PerfCheckTest, AnyErrorFailsAndIsListed) {
  const PerfLoad load = *PerfLoadNamed("s");
  const std::map<std::string, uint64_t> errors = {{"STATUS_REJECTED limit", 2},
                                                  {"STATUS_UNKNOWN", 1}};
  const PerfVerdict v = JudgePerf(load, Summary(151, 1, 1), errors);
  EXPECT_FALSE(v.pass);
  EXPECT_THAT(v.lines,
              ElementsAre("FAIL: too many errors", "FAIL: ERROR(STATUS_REJECTED limit) -> 2",
                          "FAIL: ERROR(STATUS_UNKNOWN) -> 1", "PASS: Throughput is 152 writes/s",
                          "PASS: Slowest request took 0.000001s", "PASS: Stddev is 0.000001s",
                          "FAIL"));
}

}  // namespace
}  // namespace blixard::net
