// The runs fault tests make: see fault_harness_runs.h.
#include "net/testing/fault_harness_runs.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "net/testing/kv_history.h"
#include "net/testing/kv_workload.h"

namespace blixard::net::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

std::string OutputDir() {
  const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  if (outputs != nullptr) return outputs;
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

}  // namespace

void RunUnderFaults(Schedule schedule, int nodes, uint64_t seed, int64_t fault_ms,
                    RunVerdicts* verdicts, const std::string& binary_override) {
  const std::string name = absl::StrCat(ScheduleName(schedule), "_", nodes, "n_seed", seed);
  KvHistory history(absl::StrCat("\"seed\":", seed, ",\"nodes\":", nodes, ",\"faults\":\"",
                                 ScheduleName(schedule), "\",\"workload\":\"kv\""));
  FaultHarnessOptions options;
  const char* binary = std::getenv("BLIXARD_BIN");
  options.binary = !binary_override.empty() ? binary_override
                   : binary != nullptr      ? binary
                                            : "cli/blixard";
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
  const absl::Status linearizable = CheckLinearizable(ops);
  uint64_t unknown_present = 0;
  const absl::Status set = CheckSetAdds(harness->client(), ops, &unknown_present);
  const absl::Status converged = harness->WaitConvergedAndCompareDigests(seconds(30), &applied);
  const FaultProxyCounters proxies = harness->network().Totals();
  const bool pass = linearizable.ok() && set.ok() && converged.ok();
  const std::string trace = absl::StrCat(OutputDir(), "/", name, ".trace.jsonl");
  EXPECT_OK(history.WriteTrace(trace, pass ? "pass" : "fail"));

  std::printf("%s: %s; ops ok=%lu fail=%lu unknown=%lu acked_adds=%lu unknown_adds_present=%lu; "
              "applied=%lu; proxies accepted=%lu forwarded=%lu dropped=%lu resets=%lu; trace %s\n",
              name.c_str(), counts.ToString().c_str(), done.ok, done.fail, done.unknown,
              done.acked_adds, unknown_present, applied, proxies.accepted,
              proxies.bytes_forwarded, proxies.bytes_dropped, proxies.resets, trace.c_str());
  *verdicts = RunVerdicts{linearizable, set, converged};
  EXPECT_GE(counts.rounds, 1u);
  EXPECT_GT(done.ok, 0u) << "no operation succeeded";
}

void ExpectCorrectUnderFaults(Schedule schedule, int nodes, uint64_t seed, int64_t fault_ms) {
  RunVerdicts v;
  RunUnderFaults(schedule, nodes, seed, fault_ms, &v);
  EXPECT_OK(v.linearizable);
  EXPECT_OK(v.set);
  EXPECT_OK(v.converged);
}

void ExpectCaughtUnderFaults(const std::string& bug, Schedule schedule, uint64_t seed,
                             int64_t fault_ms) {
  const char* planted = std::getenv("BLIXARD_PLANTED_BIN");
  ASSERT_NE(planted, nullptr) << "BLIXARD_PLANTED_BIN is not set";
  ASSERT_EQ(setenv("BLIXARD_PLANTED_BUG", bug.c_str(), 1), 0);  // the nodes inherit it
  RunVerdicts v;
  RunUnderFaults(schedule, 3, seed, fault_ms, &v, planted);
  unsetenv("BLIXARD_PLANTED_BUG");
  EXPECT_FALSE(v.all_ok()) << "planted bug " << bug << " went unnoticed";
  std::printf("planted %s caught: linearizable %s; set %s; converged %s\n",
              bug.c_str(), v.linearizable.ToString().c_str(),
              v.set.ToString().c_str(), v.converged.ToString().c_str());
}

}  // namespace blixard::net::testing
