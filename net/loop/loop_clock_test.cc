#include "net/loop/loop_clock.h"

#include <time.h>

#include "gtest/gtest.h"

namespace blixard::net {
namespace {

TEST(LoopClockTest, NeverGoesBackwards) {
  LoopClock clock;
  MonoMicros last = clock.NowMicros();
  EXPECT_GT(last, 0);
  for (int i = 0; i < 10000; ++i) {
    const MonoMicros now = clock.NowMicros();
    ASSERT_GE(now, last);
    last = now;
  }
  EXPECT_EQ(clock.last_returned(), last);
  clock.CheckInvariants();
}

TEST(LoopClockTest, ReadsCLOCK_MONOTONICInMicroseconds) {
  LoopClock clock;
  timespec before{};
  ASSERT_EQ(clock_gettime(CLOCK_MONOTONIC, &before), 0);
  const MonoMicros now = clock.NowMicros();
  timespec after{};
  ASSERT_EQ(clock_gettime(CLOCK_MONOTONIC, &after), 0);
  EXPECT_GE(now, before.tv_sec * kMicrosPerSecond + before.tv_nsec / 1000);
  EXPECT_LE(now, after.tv_sec * kMicrosPerSecond + after.tv_nsec / 1000);
}

}  // namespace
}  // namespace blixard::net
