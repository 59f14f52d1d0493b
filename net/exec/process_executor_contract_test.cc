// ProcessExecutor against the simulator's Executor contract checks
// (sim/env_contract.h), on a real EventLoop with real processes: the
// contract's "sleep <seconds>" task is /bin/sleep found through PATH, and
// RestartProcess() destroys the executor without stopping anything (a crash
// of the node process) and creates a new one on the same data dir.
#include <memory>
#include <utility>

#include "absl/time/time.h"
#include "core/base/check.h"
#include "core/base/logger.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "net/exec/exec_test_util.h"
#include "net/exec/process_executor.h"
#include "net/loop/event_loop.h"
#include "net/loop/loop_timers.h"
#include "sim/env_contract.h"

namespace blixard::net {
namespace {

class ExecHarness final : public sim::EnvContractHarness {
 public:
  ExecHarness() {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    CHECK_OK(loop.status());
    loop_ = std::move(*loop);
    timers_ = std::make_unique<LoopTimers>(loop_.get());
    options_.data_dir = testing::MakeTempDir();
    options_.kill_grace_us = 200 * kMicrosPerMilli;
    options_.logger = &logger_;
    executor_ = NewExecutor();
  }
  ~ExecHarness() override {
    reaper_.TrackAll(*executor_);
    executor_->CheckInvariants();
    executor_.reset();
    timers_->CheckInvariants();
    loop_->CheckInvariants();
  }

  Clock* clock() override { return &loop_->clock(); }
  Timers* timers() override { return timers_.get(); }
  Transport* transport_a() override { return nullptr; }
  Transport* transport_b() override { return nullptr; }
  NodeId unknown_peer() override { return NodeId(99); }
  Executor* executor() override { return executor_.get(); }

  void RestartProcess() override {
    reaper_.TrackAll(*executor_);
    executor_->CheckInvariants();
    executor_.reset();  // a crash: tasks keep running
    executor_ = NewExecutor();
  }

  // Real time: waits in the loop until the clock has advanced that far.
  void RunFor(int64_t duration_us) override {
    const MonoMicros until = loop_->clock().NowMicros() + duration_us;
    for (MonoMicros now = loop_->clock().NowMicros(); now < until;
         now = loop_->clock().NowMicros()) {
      reaper_.TrackAll(*executor_);
      loop_->RunOnce(absl::Microseconds(until - now));
      executor_->CheckInvariants();
    }
  }

 private:
  std::unique_ptr<ProcessExecutor> NewExecutor() {
    absl::StatusOr<std::unique_ptr<ProcessExecutor>> executor =
        ProcessExecutor::Create(loop_.get(), options_);
    CHECK_OK(executor.status());
    return std::move(*executor);
  }

  // Destroyed last: kills whatever a failed check left running.
  testing::ProcessReaper reaper_;
  NullLogger logger_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<LoopTimers> timers_;
  ProcessExecutorOptions options_;
  std::unique_ptr<ProcessExecutor> executor_;
};

TEST(ProcessExecutorContractTest, KeepsTheExecutorContract) {
  ExecHarness harness;
  sim::ExpectExecutorContract(harness);
}

TEST(ProcessExecutorContractTest, KeepsTheClockAndTimersContractsBesideIt) {
  ExecHarness harness;
  sim::ExpectClockContract(harness);
  sim::ExpectTimersContract(harness);
  sim::ExpectExecutorContract(harness);
}

}  // namespace
}  // namespace blixard::net
