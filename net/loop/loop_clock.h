// LoopClock: the production runtime's blixard::Clock (core/env.h), read from
// CLOCK_MONOTONIC in microseconds.
//
// CLOCK_MONOTONIC never steps (NTP only slews it) and stops while the
// machine is suspended, which is what leases and election timeouts want: a
// suspended node must not believe time passed for its peers' sake. Its epoch
// is the boot, so two machines' readings agree on nothing, as env.h allows.
//
// NowMicros() CHECKs that it never returns less than it returned before:
// the kernel promises it, and a node that saw time go back would hold a
// lease it no longer has, so it must stop rather than act (env.h).
//
// Thread: the loop's (the Host's) thread only, like every Clock.
#ifndef BLIXARD_NET_LOOP_LOOP_CLOCK_H_
#define BLIXARD_NET_LOOP_LOOP_CLOCK_H_

#include "core/env.h"

namespace blixard::net {

class LoopClock final : public Clock {
 public:
  LoopClock() = default;
  LoopClock(const LoopClock&) = delete;
  LoopClock& operator=(const LoopClock&) = delete;

  MonoMicros NowMicros() override;

  // The largest value NowMicros() has returned (0 before the first call).
  MonoMicros last_returned() const { return last_us_; }

  void CheckInvariants() const;

 private:
  MonoMicros last_us_ = 0;
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_LOOP_LOOP_CLOCK_H_
