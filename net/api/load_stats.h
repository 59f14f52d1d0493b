// LatencySummary: what a load run's latencies come to, computed as etcd's
// pkg/report computes them, so `blixard bench`/`check perf` and etcd's
// tools print comparable figures: throughput = successful requests / the
// run's elapsed time; slowest = the largest latency; stddev = the
// population standard deviation (divided by n, not n - 1); percentiles by
// nearest rank. Failed requests count in no latency figure (etcd keeps
// them in an error table instead).
//
// Pure; floating point only in what is printed, never in a decision of
// core/.
#ifndef BLIXARD_NET_API_LOAD_STATS_H_
#define BLIXARD_NET_API_LOAD_STATS_H_

#include <cstdint>
#include <vector>

namespace blixard::net {

struct LatencySummary {
  uint64_t count = 0;           // successful requests
  double seconds = 0;           // the run's elapsed time
  double per_second = 0;        // count / seconds (0 when seconds is 0)
  int64_t fastest_us = 0;       // 0 when count is 0, as every figure below
  int64_t slowest_us = 0;
  double mean_us = 0;
  double stddev_us = 0;         // population standard deviation
  int64_t p50_us = 0;
  int64_t p90_us = 0;
  int64_t p99_us = 0;
  int64_t p999_us = 0;
};

// The p-th percentile (0 < p <= 100) of ascending `sorted` by nearest
// rank: the smallest value with at least p% of the values at or below it.
// 0 when empty. REQUIRES: 0 < p <= 100; sorted ascending.
int64_t Percentile(const std::vector<int64_t>& sorted, double p);

// The summary of ascending `sorted_latencies_us` over a run of
// `elapsed_us`. REQUIRES: sorted ascending; every latency and elapsed_us
// >= 0.
LatencySummary Summarize(const std::vector<int64_t>& sorted_latencies_us, int64_t elapsed_us);

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_LOAD_STATS_H_
