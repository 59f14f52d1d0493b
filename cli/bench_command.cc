#include "cli/bench_command.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/client_flags.h"
#include "net/api/put_bench.h"

ABSL_FLAG(int, bench_clients, 1, "concurrent clients, each one write in flight (1-4096)");
ABSL_FLAG(uint64_t, bench_ops, 10000, "writes in all");
ABSL_FLAG(uint64_t, bench_key_size, 16, "bytes per key (16-256; every put writes a new key)");
ABSL_FLAG(uint64_t, bench_value_size, 256, "bytes per value (0-65536)");

namespace blixard::cli {
namespace {

int RunBench(const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0] != "put") {
    std::fprintf(stderr, "blixard bench: usage: blixard bench put [--clients=N --ops=M ...]\n");
    return kExitUsage;
  }
  absl::StatusOr<Output> output = OutputFormat();
  if (!output.ok()) {
    std::fprintf(stderr, "blixard bench: %s\n", std::string(output.status().message()).c_str());
    return kExitUsage;
  }
  absl::StatusOr<std::unique_ptr<net::Client>> client = MakeClient();
  if (!client.ok()) {
    std::fprintf(stderr, "blixard bench: %s\n", std::string(client.status().message()).c_str());
    return kExitUsage;
  }
  // The leader's client address: the one endpoint whose node says it leads.
  const std::optional<net::SocketAddress> leader = (*client)->FindLeader();
  if (!leader.has_value()) {
    std::fprintf(stderr, "blixard bench: no endpoint is the leader right now\n");
    return kExitUnavailable;
  }
  net::PutBenchOptions options;
  options.endpoint = *leader;
  options.clients = absl::GetFlag(FLAGS_bench_clients);
  options.ops = absl::GetFlag(FLAGS_bench_ops);
  options.key_bytes = absl::GetFlag(FLAGS_bench_key_size);
  options.value_bytes = absl::GetFlag(FLAGS_bench_value_size);
  options.timeout_us = 3600 * kMicrosPerSecond;
  options.seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  absl::StatusOr<net::PutBenchResult> result = net::RunPutBench(options);
  if (!result.ok()) {
    if (absl::IsInvalidArgument(result.status())) {
      std::fprintf(stderr, "blixard bench: %s\n", std::string(result.status().message()).c_str());
      return kExitUsage;
    }
    return ReportCallError("bench", result.status());
  }
  const std::vector<int64_t>& l = result->latencies_us;
  const double seconds = static_cast<double>(result->elapsed_us) / 1e6;
  const double throughput = seconds > 0 ? static_cast<double>(result->ok) / seconds : 0;
  double mean = 0, variance = 0;
  for (int64_t v : l) mean += static_cast<double>(v);
  if (!l.empty()) mean /= static_cast<double>(l.size());
  for (int64_t v : l) variance += (static_cast<double>(v) - mean) * (static_cast<double>(v) - mean);
  const double stddev = l.empty() ? 0 : std::sqrt(variance / static_cast<double>(l.size()));
  const auto ms = [](double us) { return us / 1000.0; };
  if (*output == Output::kJson) {
    std::printf(
        "{\"clients\":%d,\"ok\":%llu,\"failed\":%llu,\"seconds\":%.3f,\"ops_per_second\":%.1f,"
        "\"slowest_ms\":%.3f,\"stddev_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
        "\"p999_ms\":%.3f}\n",
        options.clients, static_cast<unsigned long long>(result->ok),
        static_cast<unsigned long long>(result->failed), seconds, throughput,
        ms(l.empty() ? 0 : static_cast<double>(l.back())), ms(stddev),
        ms(static_cast<double>(net::Percentile(l, 50))), ms(static_cast<double>(net::Percentile(l, 90))),
        ms(static_cast<double>(net::Percentile(l, 99))), ms(static_cast<double>(net::Percentile(l, 99.9))));
  } else {
    std::printf("clients      %d\n", options.clients);
    std::printf("writes       %llu ok, %llu failed%s%s\n", static_cast<unsigned long long>(result->ok),
                static_cast<unsigned long long>(result->failed),
                result->first_error.empty() ? "" : " (first: ", result->first_error.empty() ? "" :
                (result->first_error + ")").c_str());
    std::printf("throughput   %.1f writes/s (%.3f s)\n", throughput, seconds);
    std::printf("slowest      %.3f ms\n", ms(l.empty() ? 0 : static_cast<double>(l.back())));
    std::printf("stddev       %.3f ms\n", ms(stddev));
    std::printf("latency      p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms\n",
                ms(static_cast<double>(net::Percentile(l, 50))), ms(static_cast<double>(net::Percentile(l, 90))),
                ms(static_cast<double>(net::Percentile(l, 99))), ms(static_cast<double>(net::Percentile(l, 99.9))));
  }
  return result->failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace

const Command& BenchCommand() {
  static const Command* const command = new Command{
      "bench",
      "unthrottled durable writes: throughput and latency percentiles",
      "put",
      {EndpointsFlag(), OutputFlag(), BindFlag("clients", FLAGS_bench_clients),
       BindFlag("ops", FLAGS_bench_ops), BindFlag("key_size", FLAGS_bench_key_size),
       BindFlag("value_size", FLAGS_bench_value_size)},
      &RunBench};
  return *command;
}

}  // namespace blixard::cli
