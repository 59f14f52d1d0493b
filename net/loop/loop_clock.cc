#include "net/loop/loop_clock.h"

#include <time.h>

#include <cerrno>

#include "core/base/check.h"

namespace blixard::net {

MonoMicros LoopClock::NowMicros() {
  timespec ts{};
  // Cannot fail for CLOCK_MONOTONIC with a valid pointer (EINVAL/EFAULT are
  // the only errors), so a failure is a broken machine, not an operating
  // error.
  CHECK_EQ(clock_gettime(CLOCK_MONOTONIC, &ts), 0)
      << "clock_gettime(CLOCK_MONOTONIC): errno " << errno;
  CHECK_GE(ts.tv_sec, 0);
  const MonoMicros now = static_cast<MonoMicros>(ts.tv_sec) * kMicrosPerSecond +
                         static_cast<MonoMicros>(ts.tv_nsec / 1000);
  CHECK_GE(now, last_us_) << "CLOCK_MONOTONIC went backwards";
  last_us_ = now;
  return now;
}

void LoopClock::CheckInvariants() const { CHECK_GE(last_us_, 0); }

}  // namespace blixard::net
