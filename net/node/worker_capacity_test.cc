#include "net/node/worker_capacity.h"

#include <unistd.h>

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"

namespace blixard::net {
namespace {

TEST(WorkerCapacityTest, MemTotalIsReadInMebibytes) {
  ASSERT_OK_AND_ASSIGN(uint64_t mb, MemTotalMb("MemFree:  10 kB\nMemTotal:       2097152 kB\n"));
  EXPECT_EQ(mb, 2048u);
  EXPECT_FALSE(MemTotalMb("MemFree: 10 kB\n").ok());
  EXPECT_FALSE(MemTotalMb("MemTotal: lots kB\n").ok());
  EXPECT_FALSE(MemTotalMb("MemTotal: 1024 MB\n").ok());
}

TEST(WorkerCapacityTest, ThisMachineHasCoresMemoryAndDisk) {
  ASSERT_OK_AND_ASSIGN(cluster::Resources r, DetectResources("."));
  EXPECT_GE(r.cpu_cores(), 1u);
  EXPECT_LE(r.cpu_cores(), static_cast<uint64_t>(sysconf(_SC_NPROCESSORS_CONF)));
  EXPECT_GE(r.memory_mb(), 64u);
  EXPECT_FALSE(DetectResources("/no/such/dir").ok());
}

TEST(WorkerCapacityTest, ReservesSaturateAtZero) {
  cluster::Resources detected;
  detected.set_cpu_cores(4);
  detected.set_memory_mb(1000);
  detected.set_disk_gb(1);
  const cluster::Resources left = LessReserve(detected, WorkerReserve{1, 512, 5});
  EXPECT_EQ(left.cpu_cores(), 3u);
  EXPECT_EQ(left.memory_mb(), 488u);
  EXPECT_EQ(left.disk_gb(), 0u);
}

}  // namespace
}  // namespace blixard::net
