// SimClock: a node's monotonic Clock in the simulated world, with drift.
//
// The node's time is a piecewise-linear function of virtual time:
//   node = base_node + (world - base_world) * (1'000'000 + drift_ppm) /
//   1'000'000
// in integer arithmetic (rounded down). Changing the drift rebases the line at
// the current instant, so the node's time is continuous; with drift_ppm >
// -1'000'000 it never decreases, and NowMicros() CHECKs that. A node's clock
// starts at a seeded offset (the machine's uptime) so two nodes never agree on
// absolute time. A monotonic clock survives a process restart but not a
// reboot: Reboot() starts a new line at a small uptime, for a new process.
//
// For oracles that bound how far a node's time can run ahead of virtual time,
// the clock remembers the largest |drift| it ever ran at and the total it
// jumped forward: over any interval of virtual time d, the clock advances by
// at most d * (1'000'000 + drift_ppm_abs_max()) / 1'000'000 + jumped_us().
//
// Thread: the simulation's single thread. The World must outlive the clock.
#ifndef BLIXARD_SIM_SIM_CLOCK_H_
#define BLIXARD_SIM_SIM_CLOCK_H_

#include <cstdint>
#include <functional>

#include "core/env.h"
#include "sim/world.h"

namespace blixard::sim {

class SimClock final : public Clock {
 public:
  // Drift bound: 1% either way. Real quartz is within ~100 ppm; the fault
  // injector goes well beyond that to shake out timing assumptions.
  static constexpr int64_t kDriftPpmMax = 10'000;
  static constexpr int64_t kPpmScale = 1'000'000;

  // REQUIRES: |drift_ppm| <= kDriftPpmMax; start_offset_us >= 0.
  SimClock(const World* world, int64_t start_offset_us, int64_t drift_ppm);

  MonoMicros NowMicros() override;
  // NowMicros without recording it (for the simulator's own bookkeeping).
  MonoMicros Peek() const { return NodeTimeAt(world_->now_us()); }

  int64_t drift_ppm() const { return drift_ppm_; }
  // Changes the rate from now on. REQUIRES: |drift_ppm| <= kDriftPpmMax.
  void SetDrift(int64_t drift_ppm);
  // Steps the clock forward by `jump_us` (a monotonic clock never steps
  // back). REQUIRES: jump_us >= 0.
  void JumpForward(int64_t jump_us);
  // The machine rebooted: from now on the clock reads `uptime_us` plus what
  // elapses, and may read less than before (a new process's clock; the old
  // process is gone, so no reader sees it go back). Keeps the drift.
  // REQUIRES: uptime_us >= 0.
  void Reboot(int64_t uptime_us);

  // The largest |drift_ppm| this clock ever ran at (the initial one
  // included), and the sum of every JumpForward.
  int64_t drift_ppm_abs_max() const { return drift_ppm_abs_max_; }
  int64_t jumped_us() const { return jumped_us_; }

  // The node's time at virtual time `world_us`, on the current line.
  // REQUIRES: world_us >= the last rebase.
  MonoMicros NodeTimeAt(SimMicros world_us) const;
  // The earliest virtual time (>= now) at which the node's clock reads at
  // least `node_us`.
  SimMicros WorldTimeFor(MonoMicros node_us) const;

  // Runs after every SetDrift and JumpForward (SimTimers uses it to
  // recompute when its next deadline falls). REQUIRES: none registered yet.
  void SetChangeListener(std::function<void()> listener);

  void CheckInvariants() const;

 private:
  void Changed() {
    if (change_listener_) change_listener_();
  }

  const World* world_;
  SimMicros base_world_us_;
  MonoMicros base_node_us_;
  int64_t drift_ppm_;
  MonoMicros last_returned_us_;
  int64_t drift_ppm_abs_max_;
  int64_t jumped_us_ = 0;
  std::function<void()> change_listener_;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIM_CLOCK_H_
