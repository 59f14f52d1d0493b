#include "net/api/load_stats.h"

#include <algorithm>
#include <cmath>

#include "core/base/check.h"

namespace blixard::net {

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  CHECK(p > 0 && p <= 100) << "percentile " << p;
  if (sorted.empty()) return 0;
  // In integers (p as parts per million): in
  // doubles, 99.9% of 1,000 is 999.0000000000001, whose ceiling is 1,000.
  const uint64_t ppm = static_cast<uint64_t>(std::llround(p * 10'000));
  const uint64_t n = sorted.size();
  const uint64_t rank = std::max<uint64_t>(1, (ppm * n + 999'999) / 1'000'000);
  return sorted[std::min<uint64_t>(rank, n) - 1];
}

LatencySummary Summarize(const std::vector<int64_t>& sorted_latencies_us, int64_t elapsed_us) {
  CHECK_GE(elapsed_us, 0);
  const std::vector<int64_t>& l = sorted_latencies_us;
  LatencySummary s;
  s.count = l.size();
  s.seconds = static_cast<double>(elapsed_us) / 1e6;
  s.per_second = elapsed_us > 0 ? static_cast<double>(l.size()) / s.seconds : 0;
  if (l.empty()) return s;
  CHECK_GE(l.front(), 0);
  DCHECK(std::is_sorted(l.begin(), l.end()));
  s.fastest_us = l.front();
  s.slowest_us = l.back();
  double sum = 0;
  for (int64_t v : l) sum += static_cast<double>(v);
  s.mean_us = sum / static_cast<double>(l.size());
  double squares = 0;
  for (int64_t v : l) {
    const double deviation = static_cast<double>(v) - s.mean_us;
    squares += deviation * deviation;
  }
  s.stddev_us = std::sqrt(squares / static_cast<double>(l.size()));
  s.p50_us = Percentile(l, 50);
  s.p90_us = Percentile(l, 90);
  s.p99_us = Percentile(l, 99);
  s.p999_us = Percentile(l, 99.9);
  return s;
}

}  // namespace blixard::net
