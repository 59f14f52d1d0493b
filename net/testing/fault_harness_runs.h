// Fault runs for tests: one seeded schedule on real nodes behind fault
// proxies with a KV workload recording its history, then heal and check:
// the simulator's linearizability checker on the history, every acknowledged set add in the final read, and every node at
// one applied index with one state digest. Each run prints its counts and
// writes its history as a sim/TRACE.md trace under the test's undeclared
// outputs. Test-only (uses gtest assertions for setup failures).
#ifndef BLIXARD_NET_TESTING_FAULT_HARNESS_RUNS_H_
#define BLIXARD_NET_TESTING_FAULT_HARNESS_RUNS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "net/testing/fault_harness.h"

namespace blixard::net::testing {

// What one run found: each check's verdict.
struct RunVerdicts {
  absl::Status linearizable, set, converged;
  bool all_ok() const { return linearizable.ok() && set.ok() && converged.ok(); }
};

// One run: `nodes` nodes, `schedule` for `fault_ms`, with a fixed seed, on
// `binary_override` (empty: $BLIXARD_BIN). Setup failures are test
// failures; the checks' verdicts land in `verdicts`.
void RunUnderFaults(Schedule schedule, int nodes, uint64_t seed, int64_t fault_ms,
                    RunVerdicts* verdicts, const std::string& binary_override = "");

// A run whose every check must hold.
void ExpectCorrectUnderFaults(Schedule schedule, int nodes, uint64_t seed, int64_t fault_ms);

// A run on 3 nodes built with `bug` planted ($BLIXARD_PLANTED_BIN,
// //cli:blixard_planted, told the bug through $BLIXARD_PLANTED_BUG): some
// check must catch it.
void ExpectCaughtUnderFaults(const std::string& bug, Schedule schedule, uint64_t seed,
                             int64_t fault_ms);

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_TESTING_FAULT_HARNESS_RUNS_H_
