// The manual soak (issue 16): 5 real nodes, leader kills and
// majority/minority partitions in turn, for $BLIXARD_SOAK_SECONDS (default
// 600), checked like every fault run (linearizable, no acknowledged write
// lost, digests equal after healing). Not in `bazel test //...` (tagged
// manual):
//
//   bazel test //net/testing:fault_soak_test --test_env=BLIXARD_SOAK_SECONDS=600
//
// The counts (kills, partitions, operations) are printed in the test log.
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "net/testing/fault_harness_runs.h"

namespace blixard::net::testing {
namespace {

TEST(FaultSoakTest, KillsAndPartitionsOnFiveNodes) {
  const char* seconds = std::getenv("BLIXARD_SOAK_SECONDS");
  const int64_t soak_s = seconds != nullptr ? std::atoll(seconds) : 600;
  ASSERT_GT(soak_s, 0) << "BLIXARD_SOAK_SECONDS must be a positive number of seconds";
  ExpectCorrectUnderFaults(Schedule::kKillAndPartition, 5, 31, soak_s * 1000);
}

}  // namespace
}  // namespace blixard::net::testing
