// The production loop's Clock and Timers against the same contract checks
// as the simulator's (sim/env_contract.h), so the Host sees one behaviour in
// both worlds.
//
// The harness gives no Transport and no Executor yet (net/transport and
// net/exec do not exist): those methods return nullptr and
// ExpectTransportContract / ExpectExecutorContract are not called here.
#include <memory>
#include <utility>

#include "absl/time/time.h"
#include "core/base/check.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "net/loop/event_loop.h"
#include "net/loop/loop_timers.h"
#include "sim/env_contract.h"

namespace blixard::net {
namespace {

class LoopHarness final : public sim::EnvContractHarness {
 public:
  LoopHarness() {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    CHECK_OK(loop.status());
    loop_ = std::move(*loop);
    timers_ = std::make_unique<LoopTimers>(loop_.get());
  }
  ~LoopHarness() override {
    timers_->CheckInvariants();
    loop_->CheckInvariants();
  }

  Clock* clock() override { return &loop_->clock(); }
  Timers* timers() override { return timers_.get(); }
  Transport* transport_a() override { return nullptr; }
  Transport* transport_b() override { return nullptr; }
  NodeId unknown_peer() override { return NodeId(99); }
  Executor* executor() override { return nullptr; }
  void RestartProcess() override {
    CHECK(false) << "the loop harness has no executor to restart";
  }
  // Real time: waits in the loop until the clock has advanced that far.
  void RunFor(int64_t duration_us) override {
    const MonoMicros until = loop_->clock().NowMicros() + duration_us;
    for (MonoMicros now = loop_->clock().NowMicros(); now < until;
         now = loop_->clock().NowMicros()) {
      loop_->RunOnce(absl::Microseconds(until - now));
    }
  }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<LoopTimers> timers_;
};

TEST(LoopEnvContractTest, LoopClockKeepsTheContract) {
  LoopHarness harness;
  sim::ExpectClockContract(harness);
}

TEST(LoopEnvContractTest, LoopTimersKeepTheContract) {
  LoopHarness harness;
  sim::ExpectTimersContract(harness);
}

TEST(LoopEnvContractTest, ClockAndTimersTogetherAsTheSimulatorRunsThem) {
  LoopHarness harness;
  sim::ExpectClockContract(harness);
  sim::ExpectTimersContract(harness);
}

}  // namespace
}  // namespace blixard::net
