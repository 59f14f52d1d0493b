// Real `blixard node` processes under faults (issue 16): every peer link
// through a fault proxy, several KV clients recording a history while a
// seeded schedule kills, pauses or partitions nodes for a bounded time;
// then everything heals and the run must show
//   - a history the simulator's linearizability checker passes
//     (kv_history.h),
//   - every acknowledged set add present in the final read,
//   - every node at the same applied index with the same state digest.
// Each run writes its history as a sim/TRACE.md trace under the test's
// undeclared outputs (or its temp dir). Bounded: each case ~30 s of faults.
#include "gtest/gtest.h"
#include "net/testing/fault_harness_runs.h"

namespace blixard::net::testing {
namespace {

TEST(FaultHarnessTest, KillTheLeaderThreeNodes) {
  ExpectCorrectUnderFaults(Schedule::kKillLeader, 3, 11, 30'000);
}

TEST(FaultHarnessTest, MajorityMinorityPartitionThreeNodes) {
  ExpectCorrectUnderFaults(Schedule::kMajorityMinority, 3, 12, 30'000);
}

TEST(FaultHarnessTest, MixedFaultsFiveNodes) {
  ExpectCorrectUnderFaults(Schedule::kMixed, 5, 13, 40'000);
}

// The harness catches a simulator's planted bug in real nodes: a leader
// that acknowledges writes before they are durable on a quorum loses
// acknowledged writes when it is killed. (The planted stale read,
// read_without_read_index, is not caught yet: a partitioned leader steps
// down by check-quorum before the majority elects, and clients follow the
// highest term, so no read reaches a stale leader after a newer write
// completed; see the issue notes.)
TEST(FaultHarnessTest, CatchesAPlantedAckBeforeDurable) {
  ExpectCaughtUnderFaults("ack_before_durable", Schedule::kKillLeader, 21, 20'000);
}

}  // namespace
}  // namespace blixard::net::testing
