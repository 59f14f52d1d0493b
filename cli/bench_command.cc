#include "cli/bench_command.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/client_flags.h"
#include "net/api/kv_load.h"
#include "net/api/load_stats.h"

ABSL_FLAG(int, bench_clients, 1, "concurrent clients, each one request in flight (1-4096)");
ABSL_FLAG(uint64_t, bench_ops, 10000, "requests in all");
ABSL_FLAG(uint64_t, bench_key_size, 16, "bytes per key (16-1024)");
ABSL_FLAG(uint64_t, bench_value_size, 256, "bytes per value (0-65536)");
ABSL_FLAG(uint64_t, bench_keys, 10000, "get: read keys from the first KEYS keys of put's scheme");
ABSL_FLAG(bool, bench_fill, true, "get: write those keys first (false: a prior bench put did)");

namespace blixard::cli {
namespace {

// A probe read for WaitForLeader: its answer does not matter, only that a
// leader served it (the Client waits out elections while retrying it).
constexpr char kLeaderProbeKey[] = "bench-leader-probe";
// How long to wait for a leader: a cluster just started holds an election.
constexpr absl::Duration kLeaderWait = absl::Seconds(30);

double Ms(int64_t us) { return static_cast<double>(us) / 1000.0; }
double Ms(double us) { return us / 1000.0; }

void Print(Output output, const char* what, int clients, const net::KvLoadResult& result) {
  const net::LatencySummary s = net::Summarize(result.latencies_us, result.elapsed_us);
  const std::string first_error = result.errors.empty() ? "" : result.errors.begin()->first;
  if (output == Output::kJson) {
    std::printf(
        "{\"op\":\"%s\",\"clients\":%d,\"ok\":%llu,\"failed\":%llu,\"first_error\":%s,"
        "\"seconds\":%.3f,\"ops_per_second\":%.1f,\"slowest_ms\":%.3f,\"stddev_ms\":%.3f,"
        "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f}\n",
        what, clients, static_cast<unsigned long long>(result.ok),
        static_cast<unsigned long long>(result.failed), JsonString(first_error).c_str(), s.seconds,
        s.per_second, Ms(s.slowest_us), Ms(s.stddev_us), Ms(s.p50_us), Ms(s.p90_us),
        Ms(s.p99_us), Ms(s.p999_us));
    return;
  }
  std::printf("clients      %d\n", clients);
  std::printf("%-12s %llu ok, %llu failed%s%s%s\n", what,
              static_cast<unsigned long long>(result.ok),
              static_cast<unsigned long long>(result.failed), first_error.empty() ? "" : " (first: ",
              first_error.c_str(), first_error.empty() ? "" : ")");
  std::printf("throughput   %.1f %s/s (%.3f s)\n", s.per_second, what, s.seconds);
  std::printf("slowest      %.3f ms\n", Ms(s.slowest_us));
  std::printf("stddev       %.3f ms\n", Ms(s.stddev_us));
  std::printf("latency      p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms\n", Ms(s.p50_us),
              Ms(s.p90_us), Ms(s.p99_us), Ms(s.p999_us));
}

int Fail(const absl::Status& status) {
  if (absl::IsInvalidArgument(status)) {
    std::fprintf(stderr, "blixard bench: %s\n", std::string(status.message()).c_str());
    return kExitUsage;
  }
  return ReportCallError("bench", status);
}

int RunBench(const std::vector<std::string>& args) {
  if (args.size() != 1 || (args[0] != "put" && args[0] != "get")) {
    std::fprintf(stderr, "blixard bench: usage: blixard bench put|get [--clients=N --ops=M ...]\n");
    return kExitUsage;
  }
  const bool get = args[0] == "get";
  absl::StatusOr<Output> output = OutputFormat();
  if (!output.ok()) return Fail(output.status());
  absl::StatusOr<std::unique_ptr<net::Client>> client = MakeClient();
  if (!client.ok()) return Fail(client.status());
  net::KvLoadOptions options;
  options.clients = absl::GetFlag(FLAGS_bench_clients);
  options.ops = absl::GetFlag(FLAGS_bench_ops);
  options.key_bytes = absl::GetFlag(FLAGS_bench_key_size);
  options.value_bytes = absl::GetFlag(FLAGS_bench_value_size);
  options.seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  options.forward = true;  // a leader change mid-run costs failed requests, not the report
  if (options.ops == 0) return Fail(absl::InvalidArgumentError("--ops must be at least 1"));
  if (absl::Status s = options.Validate(); !s.ok()) return Fail(s);
  const uint64_t keys = absl::GetFlag(FLAGS_bench_keys);
  if (get && keys == 0) return Fail(absl::InvalidArgumentError("--keys must be at least 1"));
  absl::StatusOr<net::SocketAddress> leader = WaitForLeader(**client, kLeaderWait);
  if (!leader.ok()) return Fail(leader.status());
  options.endpoint = *leader;
  if (get) {
    if (absl::GetFlag(FLAGS_bench_fill)) {
      net::KvLoadOptions fill = options;
      fill.ops = keys;
      fill.clients = static_cast<int>(std::min<uint64_t>(keys, static_cast<uint64_t>(options.clients)));
      absl::StatusOr<net::KvLoadResult> filled = net::RunKvLoad(fill);
      if (!filled.ok()) return Fail(filled.status());
      if (filled->failed > 0) {
        std::fprintf(stderr, "blixard bench: writing the %llu keys to read failed: %s\n",
                     static_cast<unsigned long long>(keys), filled->errors.begin()->first.c_str());
        return kExitFailure;
      }
      if (*output == Output::kTable) {
        std::printf("filled       %llu keys in %.3f s\n", static_cast<unsigned long long>(keys),
                    static_cast<double>(filled->elapsed_us) / 1e6);
      }
    }
    options.op = net::KvLoadOptions::Op::kGet;
    options.key_space = keys;
  }
  absl::StatusOr<net::KvLoadResult> result = net::RunKvLoad(options);
  if (!result.ok()) return Fail(result.status());
  Print(*output, get ? "reads" : "writes", options.clients, *result);
  return result->failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace

absl::StatusOr<net::SocketAddress> WaitForLeader(net::Client& client, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (std::optional<net::SocketAddress> leader = client.FindLeader(); leader.has_value()) {
      return *leader;
    }
    if (absl::Now() > deadline) {
      return absl::UnavailableError("no endpoint is the leader right now");
    }
    // Served at all (even "not found"), a read means some node leads now.
    api::ClientRequest probe;
    probe.mutable_query()->set_kv_get(kLeaderProbeKey);
    if (absl::StatusOr<api::ClientResponse> r = client.Call(probe); !r.ok()) return r.status();
  }
}

const Command& BenchCommand() {
  static const Command* const command = new Command{
      "bench",
      "unthrottled KV load: throughput, slowest, stddev, latency percentiles",
      "put|get",
      {EndpointsFlag(), TimeoutFlag(), OutputFlag(), BindFlag("clients", FLAGS_bench_clients),
       BindFlag("ops", FLAGS_bench_ops), BindFlag("key_size", FLAGS_bench_key_size),
       BindFlag("value_size", FLAGS_bench_value_size), BindFlag("keys", FLAGS_bench_keys),
       BindFlag("fill", FLAGS_bench_fill)},
      &RunBench};
  return *command;
}

}  // namespace blixard::cli
