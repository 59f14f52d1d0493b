#include "cli/check_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/bench_command.h"
#include "cli/client_flags.h"
#include "net/api/kv_load.h"
#include "net/api/load_stats.h"
#include "net/api/perf_check.h"

ABSL_FLAG(std::string, check_load, "s", "s(mall), m(edium), l(arge) or xl (xLarge), as etcdctl's");
ABSL_FLAG(absl::Duration, check_duration, absl::ZeroDuration(),
          "run this long instead of the load's 60 s (for tests)");

namespace blixard::cli {
namespace {

constexpr absl::Duration kLeaderWait = absl::Seconds(30);
constexpr absl::Duration kDurationMax = absl::Hours(1);
// The drain after the last token: at most `clients` requests queued and
// as many in flight; a cluster that cannot answer them in this long is
// broken, not slow.
constexpr int64_t kDrainTimeoutUs = 300 * kMicrosPerSecond;

int Usage(absl::string_view message) {
  std::fprintf(stderr, "blixard check: %s\n", std::string(message).c_str());
  return kExitUsage;
}

int RunCheck(const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0] != "perf") {
    return Usage("usage: blixard check perf [--load=s|m|l|xl]");
  }
  absl::StatusOr<net::PerfLoad> load = net::PerfLoadNamed(absl::GetFlag(FLAGS_check_load));
  if (!load.ok()) return Usage(load.status().message());
  const absl::Duration duration = absl::GetFlag(FLAGS_check_duration);
  if (duration < absl::ZeroDuration() || duration > kDurationMax) {
    return Usage("--duration must be between 0 (the load's 60 s) and 1h");
  }
  if (duration > absl::ZeroDuration()) {
    load->duration_us = std::max<int64_t>(1, absl::ToInt64Microseconds(duration));
  }
  absl::StatusOr<std::unique_ptr<net::Client>> client = MakeClient();
  if (!client.ok()) return Usage(client.status().message());
  absl::StatusOr<net::SocketAddress> leader = WaitForLeader(**client, kLeaderWait);
  if (!leader.ok()) return ReportCallError("check", leader.status());

  net::KvLoadOptions options;
  options.endpoint = *leader;
  options.op = net::KvLoadOptions::Op::kPut;
  options.clients = load->clients;
  options.rate_per_second = load->rate_per_second;
  options.duration_us = load->duration_us;
  options.keys = net::KvLoadOptions::Keys::kRandom;
  options.key_bytes = net::kPerfKeyBytes;
  options.value_bytes = net::kPerfValueBytes;
  options.timeout_us = load->duration_us + kDrainTimeoutUs;
  options.seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  options.forward = true;  // a leader change mid-run costs failed requests, not the report
  std::fprintf(stderr, "blixard check perf: load %s: %llu writes/s from %d clients for %.1f s to %s\n",
               load->name.c_str(), static_cast<unsigned long long>(load->rate_per_second),
               load->clients, static_cast<double>(load->duration_us) / 1e6,
               leader->ToString().c_str());
  absl::StatusOr<net::KvLoadResult> result = net::RunKvLoad(options);
  if (!result.ok()) return ReportCallError("check", result.status());
  const net::PerfVerdict verdict =
      net::JudgePerf(*load, net::Summarize(result->latencies_us, result->elapsed_us), result->errors);
  for (const std::string& line : verdict.lines) std::printf("%s\n", line.c_str());
  return verdict.pass ? kExitOk : kExitFailure;
}

}  // namespace

const Command& CheckCommand() {
  static const Command* const command = new Command{
      "check",
      "etcdctl check perf's load and verdict against this cluster",
      "perf",
      {EndpointsFlag(), TimeoutFlag(), BindFlag("load", FLAGS_check_load),
       BindFlag("duration", FLAGS_check_duration)},
      &RunCheck};
  return *command;
}

}  // namespace blixard::cli
