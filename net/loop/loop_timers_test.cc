#include "net/loop/loop_timers.h"

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/loop/event_loop.h"

namespace blixard::net {
namespace {

using ::blixard::testing::IsOk;
using ::testing::ElementsAre;

constexpr int64_t kPatienceUs = 20 * kMicrosPerSecond;

class LoopTimersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    ASSERT_THAT(loop, IsOk());
    loop_ = std::move(*loop);
    timers_ = std::make_unique<LoopTimers>(loop_.get());
  }
  void TearDown() override {
    timers_->CheckInvariants();
    loop_->CheckInvariants();
    timers_.reset();
    EXPECT_EQ(loop_->timer_count(), 0u);
  }

  // Records `what` and whether it fired before `deadline`.
  std::function<void()> Record(std::string what, MonoMicros deadline) {
    return [this, what, deadline] {
      if (loop_->clock().NowMicros() < deadline) early_.push_back(what);
      fired_.push_back(what);
    };
  }

  // Runs the loop until no timer is armed (or fails after kPatienceUs).
  void RunUntilNoneArmed() {
    const MonoMicros give_up = loop_->clock().NowMicros() + kPatienceUs;
    while (timers_->armed() > 0) {
      ASSERT_LT(loop_->clock().NowMicros(), give_up);
      loop_->RunOnce(absl::Milliseconds(100));
    }
  }

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<LoopTimers> timers_;
  std::vector<std::string> fired_;
  std::vector<std::string> early_;
};

TEST_F(LoopTimersTest, EarlierDeadlinesFirstAndEqualDeadlinesInArmOrder) {
  const MonoMicros base = loop_->clock().NowMicros();
  timers_->ArmAt(1, base + 1500, Record("a", base + 1500));
  timers_->ArmAt(2, base + 1200, Record("b", base + 1200));
  timers_->ArmAt(3, base + 1500, Record("c", base + 1500));
  // ArmAfter lands on some deadline >= base + 500; with equal deadlines it
  // would still go last.
  timers_->ArmAfter(4, 3000, Record("d", base + 3000));
  timers_->CheckInvariants();
  RunUntilNoneArmed();
  EXPECT_THAT(fired_, ElementsAre("b", "a", "c", "d"));
  EXPECT_TRUE(early_.empty());
  EXPECT_EQ(timers_->fired(), 4u);
}

TEST_F(LoopTimersTest, RearmReplacesAndGoesBehindTimersArmedEarlier) {
  const MonoMicros base = loop_->clock().NowMicros();
  timers_->ArmAt(1, base + 1000, Record("one-old", base + 1000));
  timers_->ArmAt(2, base + 2000, Record("two", base + 2000));
  // Re-armed for the same deadline as 2: now armed after 2, so it fires
  // after 2; the old callback never runs.
  timers_->ArmAt(1, base + 2000, Record("one-new", base + 2000));
  EXPECT_EQ(timers_->armed(), 2u);
  EXPECT_EQ(loop_->timer_count(), 2u);
  RunUntilNoneArmed();
  EXPECT_THAT(fired_, ElementsAre("two", "one-new"));
  EXPECT_TRUE(early_.empty());
}

TEST_F(LoopTimersTest, DisarmCancels) {
  const MonoMicros base = loop_->clock().NowMicros();
  timers_->ArmAt(1, base + 1000, Record("kept", base + 1000));
  timers_->ArmAt(2, base + 500, Record("disarmed", base + 500));
  EXPECT_TRUE(timers_->IsArmed(2));
  EXPECT_TRUE(timers_->Disarm(2));
  EXPECT_FALSE(timers_->Disarm(2));
  EXPECT_FALSE(timers_->IsArmed(2));
  EXPECT_FALSE(timers_->Disarm(77));  // never armed
  RunUntilNoneArmed();
  EXPECT_THAT(fired_, ElementsAre("kept"));
}

TEST_F(LoopTimersTest, DisarmedBeforeTheCallbackSoItCanRearmTheSameId) {
  int ticks = 0;
  bool armed_inside = true;
  MonoMicros deadline = loop_->clock().NowMicros() + 1000;
  bool early = false;
  std::function<void()> tick = [&] {
    if (loop_->clock().NowMicros() < deadline) early = true;
    armed_inside = timers_->IsArmed(7);
    if (++ticks < 5) {
      deadline = loop_->clock().NowMicros() + 1000;
      timers_->ArmAt(7, deadline, tick);
    }
  };
  timers_->ArmAt(7, deadline, tick);
  RunUntilNoneArmed();
  EXPECT_EQ(ticks, 5);
  EXPECT_FALSE(armed_inside);
  EXPECT_FALSE(early);
}

TEST_F(LoopTimersTest, ZeroDelayRearmDoesNotSpinInOneIteration) {
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    timers_->ArmAfter(7, 0, tick);
  };
  timers_->ArmAfter(7, 0, tick);
  // Due on the first iteration; its re-arm waits for the next.
  const MonoMicros give_up = loop_->clock().NowMicros() + kPatienceUs;
  while (ticks == 0 && loop_->clock().NowMicros() < give_up) {
    loop_->RunOnce(absl::Milliseconds(1));
  }
  EXPECT_EQ(ticks, 1);
  loop_->RunOnce(absl::Milliseconds(1));
  EXPECT_EQ(ticks, 2);
  EXPECT_TRUE(timers_->Disarm(7));
}

TEST_F(LoopTimersTest, LateTimersFireAsSoonAsPossibleInDeadlineOrder) {
  const MonoMicros now = loop_->clock().NowMicros();
  timers_->ArmAt(1, now - 100, Record("late-100", now - 100));
  timers_->ArmAt(2, now - 300, Record("late-300", now - 300));
  timers_->ArmAt(3, now - 200, Record("late-200", now - 200));
  EXPECT_TRUE(fired_.empty());  // never inside ArmAt
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 3u);
  EXPECT_THAT(fired_, ElementsAre("late-300", "late-200", "late-100"));
}

TEST_F(LoopTimersTest, DestroyingTheTimersDisarmsEverything) {
  const MonoMicros now = loop_->clock().NowMicros();
  timers_->ArmAt(1, now - 1, Record("never", now));
  timers_->ArmAt(2, now + 1000, Record("never", now));
  EXPECT_EQ(loop_->timer_count(), 2u);
  timers_ = std::make_unique<LoopTimers>(loop_.get());  // the old one dies
  EXPECT_EQ(loop_->timer_count(), 0u);
  loop_->RunOnce(absl::ZeroDuration());
  EXPECT_TRUE(fired_.empty());
}

TEST_F(LoopTimersTest, ArmedMaxIsAHardLimitButRearmingAtItIsFine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const MonoMicros later = loop_->clock().NowMicros() + kMicrosPerSecond;
  for (Timers::TimerId id = 0; id < Timers::kArmedMax; ++id) {
    timers_->ArmAt(id, later, [] {});
  }
  timers_->ArmAt(0, later + 1, [] {});  // a re-arm: still kArmedMax armed
  EXPECT_EQ(timers_->armed(), Timers::kArmedMax);
  EXPECT_DEATH(timers_->ArmAt(Timers::kArmedMax, later, [] {}),
               "too many timers");
  EXPECT_DEATH(timers_->ArmAfter(0, Timers::kDelayMaxUs + 1, [] {}),
               "kDelayMaxUs");
  EXPECT_DEATH(
      timers_->ArmAt(0, loop_->clock().NowMicros() + 2 * Timers::kDelayMaxUs,
                     [] {}),
      "too far away");
  EXPECT_DEATH(timers_->ArmAfter(0, -1, [] {}), "delay_us >= 0");
}

}  // namespace
}  // namespace blixard::net
