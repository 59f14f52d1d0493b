// Real `blixard node` processes under faults (issue 16): every peer link
// through a fault proxy, several KV clients recording a history while a
// seeded schedule kills, pauses or partitions nodes for a bounded time;
// then everything heals and the run must show
//   - a history that passes the register checks (kv_history.h),
//   - every acknowledged set add present in the final read,
//   - every node at the same applied index with the same state digest.
// Each run writes its history as a sim/TRACE.md trace under the test's
// undeclared outputs (or its temp dir). Bounded: each case ~30 s of faults.
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "net/testing/fault_harness.h"
#include "net/testing/kv_history.h"
#include "net/testing/kv_workload.h"

namespace blixard::net::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string OutputDir() {
  const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  if (outputs != nullptr) return outputs;
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

// One run: `nodes` nodes, `schedule` for `fault_ms`, with a fixed seed.
void RunUnderFaults(Schedule schedule, int nodes, uint64_t seed, int64_t fault_ms) {
  const std::string name = absl::StrCat(ScheduleName(schedule), "_", nodes, "n_seed", seed);
  KvHistory history(absl::StrCat("\"seed\":", seed, ",\"nodes\":", nodes, ",\"faults\":\"",
                                 ScheduleName(schedule), "\",\"workload\":\"kv\""));
  FaultHarnessOptions options;
  const char* binary = std::getenv("BLIXARD_BIN");
  options.binary = binary != nullptr ? binary : "cli/blixard";
  const char* tmp = std::getenv("TEST_TMPDIR");
  options.base_dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  options.nodes = nodes;
  options.seed = seed;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<FaultHarness> harness,
                       FaultHarness::Create(options, &history));
  // A leader before the workload starts, so the first calls do not all
  // time out while the cluster boots.
  uint64_t applied = 0;
  ASSERT_OK(harness->WaitConvergedAndCompareDigests(seconds(30), &applied));

  KvWorkloadOptions workload_options;
  workload_options.endpoints = harness->cluster().endpoints();
  workload_options.seed = seed;
  KvWorkload workload(workload_options, &history);
  workload.Start();
  ASSERT_OK_AND_ASSIGN(const FaultCounts counts,
                       harness->RunSchedule(schedule, milliseconds(fault_ms)));
  ASSERT_OK(harness->HealAll());
  workload.Stop();
  const KvWorkloadCounts done = workload.Counts();

  const std::vector<HistoryOp> ops = history.ops();
  const absl::Status registers = CheckRegisters(ops);
  const absl::Status linearizable = CheckLinearizable(ops);
  uint64_t unknown_present = 0;
  const absl::Status set = CheckSetAdds(harness->client(), ops, &unknown_present);
  const absl::Status converged = harness->WaitConvergedAndCompareDigests(seconds(30), &applied);
  const FaultProxyCounters proxies = harness->network().Totals();
  const bool pass = registers.ok() && linearizable.ok() && set.ok() && converged.ok();
  const std::string trace = absl::StrCat(OutputDir(), "/", name, ".trace.jsonl");
  EXPECT_OK(history.WriteTrace(trace, pass ? "pass" : "fail"));

  std::printf("%s: %s; ops ok=%lu fail=%lu unknown=%lu acked_adds=%lu unknown_adds_present=%lu; "
              "applied=%lu; proxies accepted=%lu forwarded=%lu dropped=%lu resets=%lu; trace %s\n",
              name.c_str(), counts.ToString().c_str(), done.ok, done.fail, done.unknown,
              done.acked_adds, unknown_present, applied, proxies.accepted,
              proxies.bytes_forwarded, proxies.bytes_dropped, proxies.resets, trace.c_str());
  EXPECT_OK(registers);
  EXPECT_OK(linearizable);
  EXPECT_OK(set);
  EXPECT_OK(converged);
  EXPECT_GE(counts.rounds, 1u);
  EXPECT_GT(done.ok, 0u) << "no operation succeeded";
}

TEST(FaultHarnessTest, KillTheLeaderThreeNodes) {
  RunUnderFaults(Schedule::kKillLeader, 3, 11, 30'000);
}

TEST(FaultHarnessTest, MajorityMinorityPartitionThreeNodes) {
  RunUnderFaults(Schedule::kMajorityMinority, 3, 12, 30'000);
}

TEST(FaultHarnessTest, MixedFaultsFiveNodes) {
  RunUnderFaults(Schedule::kMixed, 5, 13, 40'000);
}

}  // namespace
}  // namespace blixard::net::testing
