#include "sim/sim_node_env.h"

#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

// A LogStore that is never called: MakeEnv only borrows the pointer.
class UnusedLogStore final : public LogStore {
 public:
  void Write(LogWrite, Done) override {}
  void PollCompletions() override {}
  absl::StatusOr<raft::HardState> ReadHardState() override {
    return raft::HardState();
  }
  absl::StatusOr<std::optional<raft::Snapshot>> ReadSnapshot() override {
    return std::optional<raft::Snapshot>();
  }
  absl::StatusOr<Index> FirstIndex() override { return Index(1); }
  absl::StatusOr<Index> LastIndex() override { return Index(0); }
  absl::StatusOr<std::vector<raft::Entry>> ReadEntries(Index, Index) override {
    return std::vector<raft::Entry>();
  }
  absl::StatusOr<Term> ReadTerm(Index) override { return Term(0); }
  absl::StatusOr<std::optional<StoreIdentity>> ReadIdentity() override {
    return std::optional<StoreIdentity>();
  }
};

TEST(SimNodeEnvTest, ClocksStartAtSeededOffsetsWithBoundedDrift) {
  World world(11);
  SimNetwork network(&world, SimNetworkOptions());
  SimNodeEnvOptions options;
  world.AddNode(NodeId(1));
  world.AddNode(NodeId(2));
  SimNodeEnv a(&world, &network, NodeId(1), options);
  SimNodeEnv b(&world, &network, NodeId(2), options);
  EXPECT_NE(a.clock().NowMicros(), b.clock().NowMicros());
  EXPECT_LE(a.clock().NowMicros(), options.clock_offset_max_us);
  EXPECT_LE(a.clock().drift_ppm(), options.drift_ppm_max);
  EXPECT_GE(a.clock().drift_ppm(), -options.drift_ppm_max);
  EXPECT_EQ(a.transport().self(), NodeId(1));
  a.CheckInvariants();
}

TEST(SimNodeEnvTest, MakeEnvIsComplete) {
  World world(1);
  SimNetwork network(&world, SimNetworkOptions());
  world.AddNode(NodeId(1));
  SimNodeEnv node(&world, &network, NodeId(1), SimNodeEnvOptions());
  UnusedLogStore disk;
  const Env env = node.MakeEnv(&disk);
  EXPECT_TRUE(env.complete());
  EXPECT_EQ(env.clock, &node.clock());
  EXPECT_EQ(env.log_store, &disk);
}

TEST(SimNodeEnvTest, RaftRngDiffersPerIncarnationAndNode) {
  World world(1);
  SimNetwork network(&world, SimNetworkOptions());
  world.AddNode(NodeId(1));
  world.AddNode(NodeId(2));
  SimNodeEnv a(&world, &network, NodeId(1), SimNodeEnvOptions());
  SimNodeEnv b(&world, &network, NodeId(2), SimNodeEnvOptions());
  EXPECT_EQ(a.RaftRng(0).Next(), a.RaftRng(0).Next());
  EXPECT_NE(a.RaftRng(0).Next(), a.RaftRng(2).Next());
  EXPECT_NE(a.RaftRng(0).Next(), b.RaftRng(0).Next());
}

TEST(SimNodeEnvTest, ProcessCrashKeepsTheClockMachineCrashRebootsIt) {
  for (uint64_t machine : {uint64_t{0}, uint64_t{1'000'000}}) {
    World world(4);
    SimNetwork network(&world, SimNetworkOptions());
    world.AddNode(NodeId(1));
    SimNodeEnvOptions options;
    options.executor.machine_crash_per_million = machine;
    SimNodeEnv env(&world, &network, NodeId(1), options);
    world.RunUntil(kMicrosPerSecond);
    const MonoMicros before = env.clock().NowMicros();
    ASSERT_GT(before, kBootUptimeMaxUs + kMicrosPerSecond) << "seed 4 draws a long uptime";
    world.Crash(NodeId(1));
    world.RunUntil(2 * kMicrosPerSecond);
    world.Restart(NodeId(1));
    const MonoMicros after = env.clock().NowMicros();
    if (machine == 0) {
      EXPECT_EQ(env.reboots(), 0u);
      EXPECT_GE(after, before + kMicrosPerSecond - kMicrosPerSecond / 100);
    } else {
      EXPECT_EQ(env.reboots(), 1u);
      EXPECT_GE(after, kBootUptimeMinUs);
      EXPECT_LE(after, kBootUptimeMaxUs + 2 * kMicrosPerSecond);
    }
    env.CheckInvariants();
  }
}

TEST(SimNodeEnvTest, OptionsAreValidated) {
  SimNodeEnvOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.drift_ppm_max = SimClock::kDriftPpmMax + 1;
  EXPECT_FALSE(options.Validate().ok());
  options = SimNodeEnvOptions();
  options.clock_offset_max_us = kClockUptimeMaxUs + 1;
  EXPECT_FALSE(options.Validate().ok());
  options = SimNodeEnvOptions();
  options.executor.machine_crash_per_million = 1'000'001;
  EXPECT_FALSE(options.Validate().ok());
  options = SimNodeEnvOptions();
  options.executor.stop_max_us = -1;
  EXPECT_FALSE(options.Validate().ok());
}

}  // namespace
}  // namespace blixard::sim
