#include "net/api/perf_check.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/check.h"

namespace blixard::net {
namespace {

constexpr int64_t kPerfDurationUs = 60 * kMicrosPerSecond;

// etcd's format for seconds (Go's %f: six decimals).
std::string Seconds(double us) { return absl::StrFormat("%fs", us / 1e6); }

}  // namespace

absl::StatusOr<PerfLoad> PerfLoadNamed(absl::string_view name) {
  if (name == "s" || name == "small") return PerfLoad{"s", 150, 50, kPerfDurationUs};
  if (name == "m" || name == "medium") return PerfLoad{"m", 1000, 200, kPerfDurationUs};
  if (name == "l" || name == "large") return PerfLoad{"l", 8000, 500, kPerfDurationUs};
  if (name == "xl" || name == "xLarge") return PerfLoad{"xl", 15000, 1000, kPerfDurationUs};
  return absl::InvalidArgumentError(
      absl::StrCat("unknown load '", name, "' (s, m, l or xl)"));
}

PerfVerdict JudgePerf(const PerfLoad& load, const LatencySummary& summary,
                      const std::map<std::string, uint64_t>& errors) {
  CHECK_GT(load.rate_per_second, 0u);
  PerfVerdict verdict;
  bool pass = true;
  if (!errors.empty()) {
    verdict.lines.push_back("FAIL: too many errors");
    for (const auto& [error, count] : errors) {
      verdict.lines.push_back(absl::StrCat("FAIL: ERROR(", error, ") -> ", count));
    }
    pass = false;
  }
  // int(rps) + 1, as etcd prints it (it rounds up, even a whole number).
  const int64_t shown = static_cast<int64_t>(summary.per_second) + 1;
  if (summary.per_second / static_cast<double>(load.rate_per_second) <=
      kPerfThroughputFractionMin) {
    verdict.lines.push_back(absl::StrCat("FAIL: Throughput too low: ", shown, " writes/s"));
    pass = false;
  } else {
    verdict.lines.push_back(absl::StrCat("PASS: Throughput is ", shown, " writes/s"));
  }
  const double slowest_us = static_cast<double>(summary.slowest_us);
  if (summary.slowest_us > kPerfSlowestUsMax) {
    verdict.lines.push_back(
        absl::StrCat("FAIL: Slowest request took too long: ", Seconds(slowest_us)));
    pass = false;
  } else {
    verdict.lines.push_back(absl::StrCat("PASS: Slowest request took ", Seconds(slowest_us)));
  }
  if (summary.stddev_us > static_cast<double>(kPerfStddevUsMax)) {
    verdict.lines.push_back(absl::StrCat("FAIL: Stddev too high: ", Seconds(summary.stddev_us)));
    pass = false;
  } else {
    verdict.lines.push_back(absl::StrCat("PASS: Stddev is ", Seconds(summary.stddev_us)));
  }
  verdict.lines.push_back(pass ? "PASS" : "FAIL");
  verdict.pass = pass;
  return verdict;
}

}  // namespace blixard::net
