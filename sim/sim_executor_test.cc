#include "sim/sim_executor.h"

#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;

const NodeId kNode(1);

WorkSpec Task(std::string id, int64_t timeout_us = 0) {
  WorkSpec spec;
  spec.kind = WorkKind::kTask;
  spec.id = std::move(id);
  spec.command = "/bin/work";
  spec.args = {"--fast"};
  spec.timeout_us = timeout_us;
  return spec;
}

WorkSpec Vm(std::string id) {
  WorkSpec spec;
  spec.kind = WorkKind::kVm;
  spec.id = std::move(id);
  spec.command = "debian-12.img";
  spec.vcpus = 2;
  return spec;
}

class SimExecutorTest : public ::testing::Test {
 protected:
  explicit SimExecutorTest(uint64_t seed = 3)
      : world_(seed), clock_(&world_, 0, 0) {
    world_.AddNode(kNode);
  }
  void Make(const SimExecutorOptions& options = {}) {
    executor_ = std::make_unique<SimExecutor>(&world_, &clock_, kNode, options);
    executor_->SetCallback(
        [this](const WorkEvent& e) { events_.push_back(e); });
  }
  World world_;
  SimClock clock_;
  std::unique_ptr<SimExecutor> executor_;
  std::vector<WorkEvent> events_;
};

TEST_F(SimExecutorTest, TaskRunsThenExitsWithinTheDrawnBounds) {
  SimExecutorOptions options;
  options.task_failure_per_million = 0;
  Make(options);
  ASSERT_THAT(executor_->Start(Task("t1")), IsOk());
  EXPECT_EQ(executor_->Running(WorkKind::kTask),
            std::vector<std::string>{"t1"});
  world_.RunUntilIdle(100);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0].state, WorkEvent::State::kRunning);
  EXPECT_GE(events_[0].duration_us, options.task_start_min_us);
  EXPECT_LE(events_[0].duration_us, options.task_start_max_us);
  EXPECT_EQ(events_[1].state, WorkEvent::State::kExited);
  EXPECT_EQ(events_[1].reason, WorkEvent::Reason::kFinished);
  EXPECT_EQ(events_[1].exit_code, 0);
  EXPECT_EQ(events_[1].id, "t1");
  EXPECT_GE(events_[1].duration_us,
            options.task_start_min_us + options.task_run_min_us);
  EXPECT_THAT(events_[1].output_tail, ::testing::HasSubstr("/bin/work --fast"));
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
  executor_->CheckInvariants();
}

TEST_F(SimExecutorTest, TimeoutKillsALongTask) {
  Make();
  executor_->SetPlanner([](const WorkSpec&) {
    return SimWorkPlan{false, 1000, 10 * kMicrosPerSecond, 0};
  });
  ASSERT_THAT(executor_->Start(Task("slow", 2 * kMicrosPerSecond)), IsOk());
  world_.RunUntilIdle(100);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].reason, WorkEvent::Reason::kTimedOut);
  EXPECT_EQ(events_[1].exit_code, SimExecutor::kExitTimedOut);
  EXPECT_EQ(events_[1].duration_us, 2 * kMicrosPerSecond);
}

TEST_F(SimExecutorTest, PlannerDictatesFailures) {
  Make();
  executor_->SetPlanner([](const WorkSpec& spec) -> std::optional<SimWorkPlan> {
    if (spec.id == "bad") return SimWorkPlan{false, 10, 20, 3};
    if (spec.id == "nostart") return SimWorkPlan{true, 10, 0, 0};
    return std::nullopt;
  });
  ASSERT_THAT(executor_->Start(Task("bad")), IsOk());
  ASSERT_THAT(executor_->Start(Task("nostart")), IsOk());
  world_.RunUntilIdle(100);
  ASSERT_EQ(events_.size(), 3u);
  EXPECT_EQ(events_[0].id, "bad");  // both at 10 us: start order
  EXPECT_EQ(events_[0].state, WorkEvent::State::kRunning);
  EXPECT_EQ(events_[1].id, "nostart");
  EXPECT_EQ(events_[1].reason, WorkEvent::Reason::kFailed);
  EXPECT_EQ(events_[1].exit_code, SimExecutor::kExitFailed);
  EXPECT_EQ(events_[2].id, "bad");
  EXPECT_EQ(events_[2].exit_code, 3);
  EXPECT_EQ(events_[2].duration_us, 30);
}

TEST_F(SimExecutorTest, VmRunsUntilStopped) {
  Make();
  ASSERT_THAT(executor_->Start(Vm("web")), IsOk());
  world_.RunUntil(10 * kMicrosPerSecond);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].state, WorkEvent::State::kRunning);
  executor_->CheckInvariants();
  EXPECT_TRUE(executor_->Stop(WorkKind::kVm, "web"));
  EXPECT_FALSE(executor_->Stop(WorkKind::kVm, "web"));    // already stopping
  EXPECT_FALSE(executor_->Stop(WorkKind::kTask, "web"));  // kinds are apart
  world_.RunUntilIdle(10);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].reason, WorkEvent::Reason::kStopped);
  EXPECT_EQ(events_[1].exit_code, 0);
}

TEST_F(SimExecutorTest, StopBeforeRunningSkipsTheRunningEvent) {
  Make();
  ASSERT_THAT(executor_->Start(Task("t")), IsOk());
  EXPECT_TRUE(executor_->Stop(WorkKind::kTask, "t"));
  world_.RunUntilIdle(10);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].reason, WorkEvent::Reason::kStopped);
  EXPECT_EQ(events_[0].exit_code, SimExecutor::kExitStopped);
}

TEST_F(SimExecutorTest, VmsCanDie) {
  SimExecutorOptions options;
  options.vm_crash_per_million = 1'000'000;
  options.vm_crash_window_us = kMicrosPerSecond;
  Make(options);
  ASSERT_THAT(executor_->Start(Vm("doomed")), IsOk());
  world_.RunUntilIdle(10);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].reason, WorkEvent::Reason::kFailed);
}

TEST_F(SimExecutorTest, OutputTailIsBounded) {
  Make();
  WorkSpec spec = Task("chatty");
  spec.args.assign(1000, "0123456789");
  ASSERT_THAT(executor_->Start(spec), IsOk());
  world_.RunUntilIdle(10);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].output_tail.size(), Executor::kOutputTailBytesMax);
  EXPECT_THAT(events_[1].output_tail, ::testing::EndsWith(" us\n"));
}

TEST_F(SimExecutorTest, BadSpecsAreRejected) {
  Make();
  EXPECT_THAT(executor_->Start(Task("")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  WorkSpec no_command = Task("x");
  no_command.command.clear();
  EXPECT_THAT(executor_->Start(no_command),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(executor_->Start(Task("x", -1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_THAT(executor_->Start(Task("x")), IsOk());
  EXPECT_THAT(executor_->Start(Task("x")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(executor_->Start(Vm("x")), IsOk());  // another kind
  EXPECT_EQ(executor_->started(), 2u);
}

TEST_F(SimExecutorTest, MachineCrashKillsAllWorkSilently) {
  SimExecutorOptions options;
  options.machine_crash_per_million = 1'000'000;
  Make(options);
  std::vector<std::pair<std::string, bool>> live;
  executor_->SetLiveObserver([&](NodeId node, const WorkSpec& spec, bool is_live, bool) {
    EXPECT_EQ(node, kNode);
    live.emplace_back(spec.id, is_live);
  });
  ASSERT_THAT(executor_->Start(Task("a")), IsOk());
  ASSERT_THAT(executor_->Start(Vm("b")), IsOk());
  world_.Crash(kNode);
  EXPECT_TRUE(executor_->last_crash_was_machine());
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
  EXPECT_TRUE(executor_->Running(WorkKind::kVm).empty());
  world_.RunUntilIdle(100);
  world_.Restart(kNode);
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(executor_->killed_by_crash(), 2u);
  EXPECT_EQ(executor_->live(), 0u);
  EXPECT_EQ(live, (std::vector<std::pair<std::string, bool>>{
                      {"a", true}, {"b", true}, {"a", false}, {"b", false}}));
  executor_->SetCallback([this](const WorkEvent& e) { events_.push_back(e); });
  ASSERT_THAT(executor_->Start(Task("a")), IsOk());
  world_.RunUntilIdle(100);
  EXPECT_EQ(events_.size(), 2u);
  executor_->CheckInvariants();
}

// A process crash: the work is a child in its own session and runs on. The
// restarted Host finds it in Running() and hears every event it missed and
// every later one, once, in order; the work keeps its drawn timing.
TEST_F(SimExecutorTest, WorkSurvivesAProcessCrashAndKeepsItsTiming) {
  SimExecutorOptions options;
  options.machine_crash_per_million = 0;
  Make(options);
  executor_->SetPlanner([](const WorkSpec& spec) {
    // "early" runs and exits while the node is down; "late" exits after.
    return SimWorkPlan{false, 10, spec.id == "early" ? 1'000 : 50'000, 3};
  });
  ASSERT_THAT(executor_->Start(Task("early")), IsOk());
  ASSERT_THAT(executor_->Start(Task("late")), IsOk());
  world_.RunUntil(5);
  world_.Crash(kNode);
  EXPECT_FALSE(executor_->last_crash_was_machine());
  EXPECT_EQ(executor_->Running(WorkKind::kTask), (std::vector<std::string>{"early", "late"}));
  world_.RunUntil(20'000);  // "early" ran and exited unheard
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(executor_->live(), 1u);
  EXPECT_EQ(executor_->Running(WorkKind::kTask), (std::vector<std::string>{"early", "late"}));
  world_.Restart(kNode);
  EXPECT_THAT(executor_->Start(Task("late")), StatusIs(absl::StatusCode::kAlreadyExists));
  std::vector<WorkEvent> heard;
  executor_->SetCallback([&](const WorkEvent& e) { heard.push_back(e); });
  executor_->CheckInvariants();
  world_.RunUntilIdle(100);
  ASSERT_EQ(heard.size(), 4u);
  EXPECT_EQ(heard[0].id, "early");
  EXPECT_EQ(heard[0].state, WorkEvent::State::kRunning);
  EXPECT_EQ(heard[1].id, "late");
  EXPECT_EQ(heard[1].state, WorkEvent::State::kRunning);
  EXPECT_EQ(heard[2].id, "early");
  EXPECT_EQ(heard[2].state, WorkEvent::State::kExited);
  EXPECT_EQ(heard[2].exit_code, 3);
  EXPECT_EQ(heard[2].duration_us, 1'010);  // the timing it was drawn
  EXPECT_EQ(heard[3].id, "late");
  EXPECT_EQ(heard[3].duration_us, 50'010);
  EXPECT_EQ(world_.now_us(), 50'010);
  EXPECT_TRUE(events_.empty());  // the dead process's callback heard nothing
  EXPECT_EQ(executor_->survived_crash(), 2u);
  EXPECT_EQ(executor_->killed_by_crash(), 0u);
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
  executor_->CheckInvariants();
}

TEST_F(SimExecutorTest, CrashKindIsASeededDrawPerCrash) {
  SimExecutorOptions options;
  options.machine_crash_per_million = 500'000;
  Make(options);
  int machine = 0;
  for (int i = 0; i < 200; ++i) {
    world_.Crash(kNode);
    machine += executor_->last_crash_was_machine() ? 1 : 0;
    world_.Restart(kNode);
  }
  EXPECT_GT(machine, 70);  // expect 100, sd 7
  EXPECT_LT(machine, 130);
}

// The work runs in its own processes: a paused node process hears of it at
// resume, but it ran on meanwhile.
TEST_F(SimExecutorTest, PausedNodeHearsCompletionsAtResume) {
  Make();
  executor_->SetPlanner([](const WorkSpec&) {
    return SimWorkPlan{false, 10, 20, 0};
  });
  ASSERT_THAT(executor_->Start(Task("t")), IsOk());
  world_.Pause(kNode);
  world_.RunUntil(1000);
  EXPECT_TRUE(events_.empty());
  world_.Resume(kNode);
  world_.RunUntilIdle(10);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].duration_us, 30);
}

TEST_F(SimExecutorTest, StopOfWorkThatExitedUnheardReportsOneExit) {
  Make();
  executor_->SetPlanner([](const WorkSpec&) {
    return SimWorkPlan{false, 10, 5000, 0};
  });
  ASSERT_THAT(executor_->Start(Task("t")), IsOk());
  world_.Pause(kNode);
  world_.RunUntil(100'000);  // it ran and exited; the node heard nothing
  EXPECT_EQ(executor_->Running(WorkKind::kTask), std::vector<std::string>{"t"});
  EXPECT_FALSE(executor_->Stop(WorkKind::kTask, "t"));  // already gone
  world_.Resume(kNode);
  world_.RunUntilIdle(10);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].reason, WorkEvent::Reason::kFinished);
  executor_->CheckInvariants();
}

TEST_F(SimExecutorTest, TimeoutIsMeasuredOnTheNodesClock) {
  for (int64_t drift : {-SimClock::kDriftPpmMax, int64_t{0}, SimClock::kDriftPpmMax}) {
    events_.clear();
    clock_.SetDrift(drift);
    Make();
    executor_->SetPlanner([](const WorkSpec&) {
      return SimWorkPlan{false, 1'000, 10 * kMicrosPerSecond, 0};
    });
    ASSERT_THAT(executor_->Start(Task("t", 2 * kMicrosPerSecond)), IsOk());
    world_.RunUntil(world_.now_us() + 500'000);
    clock_.SetDrift(-drift);  // the rate changes under the pending kill
    world_.RunUntilIdle(100);
    ASSERT_EQ(events_.size(), 2u) << drift;
    EXPECT_EQ(events_[1].reason, WorkEvent::Reason::kTimedOut);
    // Never early on the node's clock; exact unless the clock sped up after
    // the kill was scheduled (then late by what the change gained).
    EXPECT_GE(events_[1].duration_us, 2 * kMicrosPerSecond) << drift;
    if (drift >= 0) EXPECT_EQ(events_[1].duration_us, 2 * kMicrosPerSecond) << drift;
    EXPECT_LE(events_[1].duration_us, 2 * kMicrosPerSecond * 103 / 100) << drift;
  }
}

TEST_F(SimExecutorTest, FailureRateIsPlausibleAndSeeded) {
  Make();  // 10% failures by default
  for (int i = 0; i < 2000; ++i) {
    ASSERT_THAT(executor_->Start(Task("t" + std::to_string(i))), IsOk());
    if (i % 500 == 499) world_.RunUntilIdle(100'000);
  }
  world_.RunUntilIdle(100'000);
  int failed = 0;
  for (const WorkEvent& e : events_) {
    if (e.state == WorkEvent::State::kExited && e.exit_code != 0) ++failed;
  }
  EXPECT_GT(failed, 140);  // expect 200, sd 13
  EXPECT_LT(failed, 260);
}

}  // namespace
}  // namespace blixard::sim
