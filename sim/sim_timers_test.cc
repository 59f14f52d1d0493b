#include "sim/sim_timers.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

const NodeId kNode(1);

class SimTimersTest : public ::testing::Test {
 protected:
  SimTimersTest() : world_(9), clock_(&world_, 1000, 0) {
    world_.AddNode(kNode);
    timers_ = std::make_unique<SimTimers>(&world_, &clock_, kNode);
  }
  std::function<void()> Record(std::string what) {
    return [this, what] {
      fired_.push_back(what + "@" + std::to_string(clock_.NowMicros()));
    };
  }
  World world_;
  SimClock clock_;
  std::unique_ptr<SimTimers> timers_;
  std::vector<std::string> fired_;
};

TEST_F(SimTimersTest, FireInDeadlineOrderAndEqualDeadlinesInArmOrder) {
  timers_->ArmAt(1, 1500, Record("a"));
  timers_->ArmAt(2, 1200, Record("b"));
  timers_->ArmAt(3, 1500, Record("c"));
  timers_->ArmAfter(4, 500, Record("d"));  // also 1500, armed last
  timers_->CheckInvariants();
  world_.RunUntilIdle(100);
  EXPECT_EQ(fired_,
            (std::vector<std::string>{"b@1200", "a@1500", "c@1500", "d@1500"}));
  EXPECT_EQ(timers_->armed(), 0u);
  EXPECT_EQ(timers_->fired(), 4u);
}

TEST_F(SimTimersTest, RearmReplacesAndDisarmCancels) {
  timers_->ArmAt(1, 1100, Record("old"));
  timers_->ArmAt(1, 1300, Record("new"));
  timers_->ArmAt(2, 1200, Record("gone"));
  EXPECT_TRUE(timers_->Disarm(2));
  EXPECT_FALSE(timers_->Disarm(2));
  EXPECT_TRUE(timers_->IsArmed(1));
  world_.RunUntilIdle(100);
  EXPECT_EQ(fired_, (std::vector<std::string>{"new@1300"}));
  EXPECT_FALSE(timers_->IsArmed(1));
}

TEST_F(SimTimersTest, CallbackCanRearmItselfLikeATicker) {
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    timers_->ArmAfter(7, 100, tick);
  };
  timers_->ArmAfter(7, 100, tick);
  world_.RunUntil(1000);
  EXPECT_EQ(ticks, 10);
  timers_->CheckInvariants();
}

TEST_F(SimTimersTest, PastDeadlineFiresAtOnce) {
  world_.RunUntil(500);
  timers_->ArmAt(1, 0, Record("late"));
  world_.RunUntilIdle(10);
  EXPECT_EQ(fired_, (std::vector<std::string>{"late@1500"}));
  EXPECT_EQ(world_.now_us(), 500);
}

TEST_F(SimTimersTest, DriftChangeKeepsEqualDeadlinesInArmOrder) {
  timers_->ArmAt(1, 5000, Record("first"));
  clock_.SetDrift(SimClock::kDriftPpmMax);
  timers_->ArmAt(2, 5000, Record("second"));
  clock_.SetDrift(-SimClock::kDriftPpmMax);
  timers_->ArmAt(3, 4999, Record("earlier"));
  world_.RunUntilIdle(100);
  EXPECT_EQ(fired_, (std::vector<std::string>{"earlier@4999", "first@5000",
                                              "second@5000"}));
}

TEST_F(SimTimersTest, FastClockFiresEarlierInVirtualTime) {
  clock_.SetDrift(SimClock::kDriftPpmMax);  // +1%
  timers_->ArmAfter(1, 1'000'000, Record("t"));
  world_.RunUntilIdle(10);
  EXPECT_EQ(world_.now_us(), 990'100);  // ceil(1e6 / 1.01)
  ASSERT_EQ(fired_.size(), 1u);
}

TEST_F(SimTimersTest, PausedNodeTimersFireLateInOrderAtResume) {
  timers_->ArmAt(1, 1200, Record("a"));
  timers_->ArmAt(2, 1100, Record("b"));
  world_.Pause(kNode);
  world_.RunUntil(5000);
  EXPECT_TRUE(fired_.empty());
  timers_->CheckInvariants();
  world_.Resume(kNode);
  world_.RunUntilIdle(10);
  EXPECT_EQ(fired_, (std::vector<std::string>{"b@6000", "a@6000"}));
}

TEST_F(SimTimersTest, CrashDisarmsEverything) {
  timers_->ArmAt(1, 1200, Record("a"));
  timers_->ArmAt(2, 1300, Record("b"));
  world_.RunUntil(150);
  world_.Crash(kNode);
  EXPECT_EQ(timers_->armed(), 0u);
  world_.RunUntil(1000);
  world_.Restart(kNode);
  timers_->ArmAt(3, 2500, Record("c"));
  world_.RunUntilIdle(10);
  EXPECT_EQ(fired_, (std::vector<std::string>{"c@2500"}));
  timers_->CheckInvariants();
}

TEST_F(SimTimersTest, CallbackThatDisarmsALaterTimerInTheSameBatch) {
  timers_->ArmAt(1, 1100, [&] {
    fired_.push_back("a");
    timers_->Disarm(2);
  });
  timers_->ArmAt(2, 1100, Record("b"));
  world_.RunUntilIdle(10);
  EXPECT_EQ(fired_, (std::vector<std::string>{"a"}));
}

TEST_F(SimTimersTest, ClockJumpFiresReachedDeadlinesAtOnce) {
  timers_->ArmAt(1, 5000, Record("a"));
  timers_->ArmAt(2, 9000, Record("b"));
  world_.RunUntil(100);
  clock_.JumpForward(5000);  // the clock now reads 6100
  world_.RunUntil(100);
  EXPECT_EQ(fired_, (std::vector<std::string>{"a@6100"}));
  world_.RunUntilIdle(10);
  EXPECT_EQ(fired_, (std::vector<std::string>{"a@6100", "b@9000"}));
  EXPECT_EQ(world_.now_us(), 3000);
}

TEST_F(SimTimersTest, ZeroDelayRearmYieldsToOtherEventsDueNow) {
  world_.Schedule(0, kNode, [this] {
    timers_->ArmAfter(1, 0, [this] {
      fired_.push_back("timer");
      timers_->ArmAfter(1, 0, [this] { fired_.push_back("rearmed"); });
    });
    world_.ScheduleAfter(0, kNode, [this] { fired_.push_back("packet"); });
  });
  world_.RunUntilIdle(100);
  EXPECT_EQ(fired_, (std::vector<std::string>{"timer", "packet", "rearmed"}));
  EXPECT_EQ(world_.now_us(), 0);
}

TEST_F(SimTimersTest, DeadlinesTooFarAwayAreABug) {
  EXPECT_DEATH(timers_->ArmAfter(1, Timers::kDelayMaxUs + 1, [] {}), "");
  EXPECT_DEATH(timers_->ArmAt(1, INT64_MAX, [] {}), "too far");
}

}  // namespace
}  // namespace blixard::sim
