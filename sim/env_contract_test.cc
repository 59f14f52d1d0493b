// The simulator's Env implementations against the shared contract checks.
#include "sim/env_contract.h"

#include "gtest/gtest.h"
#include "sim/sim_clock.h"
#include "sim/sim_network.h"
#include "sim/sim_node_env.h"
#include "sim/world.h"

namespace blixard::sim {
namespace {

class SimHarness final : public EnvContractHarness {
 public:
  explicit SimHarness(int64_t drift_ppm)
      : world_(5), network_(&world_, Options()) {
    world_.AddNode(NodeId(1));
    world_.AddNode(NodeId(2));
    SimNodeEnvOptions options;
    // Process crashes only (the contract's restart keeps the machine); runs
    // as long as "sleep 10" asks, never failing by chance.
    options.executor.machine_crash_per_million = 0;
    options.executor.task_failure_per_million = 0;
    options.executor.task_run_min_us = 10 * kMicrosPerSecond;
    options.executor.task_run_max_us = 10 * kMicrosPerSecond;
    a_ = std::make_unique<SimNodeEnv>(&world_, &network_, NodeId(1), options);
    b_ = std::make_unique<SimNodeEnv>(&world_, &network_, NodeId(2), options);
    a_->clock().SetDrift(drift_ppm);
  }
  Clock* clock() override { return &a_->clock(); }
  Timers* timers() override { return &a_->timers(); }
  Transport* transport_a() override { return &a_->transport(); }
  Transport* transport_b() override { return &b_->transport(); }
  NodeId unknown_peer() override { return NodeId(99); }
  Executor* executor() override { return &a_->executor(); }
  void RestartProcess() override {
    world_.Crash(NodeId(1));
    world_.Restart(NodeId(1));
  }
  void RunFor(int64_t duration_us) override {
    const MonoMicros until = a_->clock().Peek() + duration_us;
    world_.RunUntil(a_->clock().WorldTimeFor(until));
  }

 private:
  static SimNetworkOptions Options() {
    SimNetworkOptions options;
    options.loss_per_million = 0;
    return options;
  }
  World world_;
  SimNetwork network_;
  std::unique_ptr<SimNodeEnv> a_;
  std::unique_ptr<SimNodeEnv> b_;
};

TEST(EnvContractTest, SimEnvKeepsTheContract) {
  SimHarness harness(0);
  ExpectClockContract(harness);
  ExpectTimersContract(harness);
  ExpectTransportContract(harness);
}

TEST(EnvContractTest, SimExecutorKeepsTheContract) {
  for (int64_t drift : {-SimClock::kDriftPpmMax, int64_t{0}, SimClock::kDriftPpmMax}) {
    SimHarness harness(drift);
    ExpectExecutorContract(harness);
  }
}

TEST(EnvContractTest, SimEnvKeepsTheContractWithFastAndSlowClocks) {
  for (int64_t drift : {-SimClock::kDriftPpmMax, SimClock::kDriftPpmMax}) {
    SimHarness harness(drift);
    ExpectClockContract(harness);
    ExpectTimersContract(harness);
  }
}

}  // namespace
}  // namespace blixard::sim
