#include "sim/sim_clock.h"

#include <vector>

#include "core/base/rng.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

TEST(SimClockTest, NoDriftFollowsVirtualTimeFromItsOffset) {
  World world(1);
  SimClock clock(&world, 5000, 0);
  EXPECT_EQ(clock.NowMicros(), 5000);
  world.RunUntil(1'000'000);
  EXPECT_EQ(clock.NowMicros(), 1'005'000);
}

TEST(SimClockTest, PositiveAndNegativeDriftInIntegerPpm) {
  World world(1);
  SimClock fast(&world, 0, 1000);   // +0.1%
  SimClock slow(&world, 0, -1000);  // -0.1%
  world.RunUntil(10'000'000);
  EXPECT_EQ(fast.NowMicros(), 10'010'000);
  EXPECT_EQ(slow.NowMicros(), 9'990'000);
}

TEST(SimClockTest, DriftChangesAndJumpsNeverGoBackwards) {
  World world(3);
  SimClock clock(&world, 123, 0);
  Rng rng = world.Stream("test");
  MonoMicros last = clock.NowMicros();
  for (int i = 0; i < 5000; ++i) {
    world.RunUntil(world.now_us() + static_cast<int64_t>(rng.Range(0, 3000)));
    if (rng.Chance(1, 10)) {
      clock.SetDrift(
          static_cast<int64_t>(rng.Range(0, 2 * SimClock::kDriftPpmMax)) -
          SimClock::kDriftPpmMax);
    }
    if (rng.Chance(1, 100)) {
      clock.JumpForward(static_cast<int64_t>(rng.Range(0, 1'000'000)));
    }
    const MonoMicros now = clock.NowMicros();
    ASSERT_GE(now, last);
    last = now;
    clock.CheckInvariants();
  }
}

TEST(SimClockTest, WorldTimeForIsTheEarliestInstantReachingTheDeadline) {
  World world(1);
  for (int64_t drift : std::vector<int64_t>{-SimClock::kDriftPpmMax, -333, 0, 7,
                                            999, SimClock::kDriftPpmMax}) {
    SimClock clock(&world, 77, drift);
    for (MonoMicros deadline : {0, 77, 78, 1000, 123'457, 10'000'001}) {
      const SimMicros at = clock.WorldTimeFor(deadline);
      EXPECT_GE(at, world.now_us());
      EXPECT_GE(clock.NodeTimeAt(at), deadline) << drift << " " << deadline;
      if (at > world.now_us()) {
        EXPECT_LT(clock.NodeTimeAt(at - 1), deadline)
            << drift << " " << deadline;
      }
    }
  }
}

TEST(SimClockTest, ChangeListenerHearsDriftAndJumps) {
  World world(1);
  SimClock clock(&world, 0, 0);
  int changes = 0;
  clock.SetChangeListener([&] { ++changes; });
  clock.SetDrift(50);
  clock.JumpForward(10);
  EXPECT_EQ(changes, 2);
  EXPECT_EQ(clock.NowMicros(), 10);
}

TEST(SimClockTest, RebootStartsANewLineAtASmallUptime) {
  World world(1);
  SimClock clock(&world, 5 * 24 * 3600 * kMicrosPerSecond, 0);  // five days up
  world.RunUntil(1'000'000);
  EXPECT_GT(clock.NowMicros(), 5 * 24 * 3600 * kMicrosPerSecond);
  int changes = 0;
  clock.SetChangeListener([&] { ++changes; });
  clock.Reboot(30 * kMicrosPerSecond);
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(clock.NowMicros(), 30 * kMicrosPerSecond);  // the new process's clock
  world.RunUntil(2'000'000);
  EXPECT_EQ(clock.NowMicros(), 31 * kMicrosPerSecond);
  clock.CheckInvariants();
}

// The bound oracles rely on: over any stretch of virtual time the clock
// advances by at most the stretch at the largest drift it ran at, plus
// what it jumped.
TEST(SimClockTest, AdvanceIsBoundedByMaxDriftAndJumps) {
  World world(9);
  SimClock clock(&world, 1234, 0);
  Rng rng = world.Stream("test");
  const MonoMicros start = clock.NowMicros();
  int64_t jumps_seen = 0;
  for (int i = 0; i < 3000; ++i) {
    world.RunUntil(world.now_us() + static_cast<int64_t>(rng.Range(0, 5000)));
    if (rng.Chance(1, 20)) {
      clock.SetDrift(static_cast<int64_t>(rng.Range(0, 2 * SimClock::kDriftPpmMax)) -
                     SimClock::kDriftPpmMax);
    }
    if (rng.Chance(1, 200)) {
      const int64_t jump = static_cast<int64_t>(rng.Range(0, 100'000));
      clock.JumpForward(jump);
      jumps_seen += jump;
    }
    const int64_t elapsed = world.now_us();
    const int64_t bound =
        elapsed + elapsed * clock.drift_ppm_abs_max() / SimClock::kPpmScale + 1 + clock.jumped_us();
    ASSERT_LE(clock.NowMicros() - start, bound) << i;
  }
  EXPECT_EQ(clock.jumped_us(), jumps_seen);
  EXPECT_GT(clock.drift_ppm_abs_max(), SimClock::kDriftPpmMax / 2);
}

TEST(SimClockDeathTest, DriftBeyondTheBoundCrashes) {
  World world(1);
  SimClock clock(&world, 0, 0);
  EXPECT_DEATH(clock.SetDrift(SimClock::kDriftPpmMax + 1), "kDriftPpmMax");
}

}  // namespace
}  // namespace blixard::sim
