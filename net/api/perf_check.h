// The workloads and the verdict of `blixard check perf`, which are those of
// `etcdctl check perf` (etcd v3.4+, etcdctl/ctlv3/command/check.go), so the
// two can be run side by side and read the same way:
//
//   load  rate (writes/s)  clients  duration
//   s       150              50      60 s
//   m     1,000             200      60 s
//   l     8,000             500      60 s
//   xl   15,000           1,000      60 s
//
// Every request is a durable put of a 256-byte random key (never written
// before) and a 1 KiB value, paced by a token bucket at the rate
// (token_bucket.h). The verdict, as etcd's:
//   - any failed request: "FAIL: too many errors", then one
//     "FAIL: ERROR(<error>) -> <count>" line per distinct error;
//   - throughput (successes / elapsed, elapsed including the drain after
//     the last token) must be above 90% of the rate: "PASS: Throughput is
//     N writes/s" or "FAIL: Throughput too low: N writes/s", N being
//     int(throughput) + 1 as etcd prints it. etcd fails at exactly 90%
//     (rps / rate <= 0.9); so does this.
//   - the slowest request must take at most 0.5 s;
//   - the latencies' (population) standard deviation must be at most 0.1 s;
//   - a last line "PASS" or "FAIL".
// One deliberate difference in wording: etcd prints a failed slowest or
// stddev check without a "FAIL: " prefix ("Slowest request took too long:
// 0.786915s"); this prints "FAIL: Slowest request took too long: ...", so
// that every check line starts with PASS: or FAIL:. The rest of each line
// is etcd's, figures in seconds with six decimals.
//
// Pure; no I/O.
#ifndef BLIXARD_NET_API_PERF_CHECK_H_
#define BLIXARD_NET_API_PERF_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/env.h"
#include "net/api/load_stats.h"

namespace blixard::net {

// etcd's fixed request shape.
inline constexpr size_t kPerfKeyBytes = 256;
inline constexpr size_t kPerfValueBytes = 1024;
// etcd's pass thresholds.
inline constexpr double kPerfThroughputFractionMin = 0.9;  // must be above
inline constexpr int64_t kPerfSlowestUsMax = 500 * kMicrosPerMilli;
inline constexpr int64_t kPerfStddevUsMax = 100 * kMicrosPerMilli;

struct PerfLoad {
  std::string name;  // "s", "m", "l", "xl"
  uint64_t rate_per_second = 0;
  int clients = 0;
  int64_t duration_us = 0;
};

// The load called `name`: s|small, m|medium, l|large, xl|xLarge (etcd's
// names and aliases). INVALID_ARGUMENT for any other name.
absl::StatusOr<PerfLoad> PerfLoadNamed(absl::string_view name);

struct PerfVerdict {
  bool pass = false;
  std::vector<std::string> lines;  // what to print, in order, no newlines
};

// The verdict on a run of `load` that came to `summary`, with `errors`
// (error text -> how many requests failed with it; empty: none failed).
PerfVerdict JudgePerf(const PerfLoad& load, const LatencySummary& summary,
                      const std::map<std::string, uint64_t>& errors);

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_PERF_CHECK_H_
