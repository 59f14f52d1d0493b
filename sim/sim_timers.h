// SimTimers: a node's Timers on the World, read against the node's SimClock.
//
// Like a production timer heap it keeps the armed timers ordered by
// (deadline, arm order) and has one World event pending, for the earliest
// deadline; when it fires, every timer armed before it fired whose deadline
// the node's clock has reached runs, in that order (timers armed by those
// callbacks wait for the next event, so a zero-delay re-arm cannot spin). So
// equal deadlines fire in arm order, drift changes never reorder timers (the
// pending event is recomputed on every clock change), a paused node's timers
// fire late and in order at resume, and a crash disarms everything (the
// restarted Host arms afresh).
//
// Thread: the simulation's single thread. Construct after the World and the
// SimClock; both must outlive it, and it must outlive the World's run (it
// registers a lifecycle listener).
#ifndef BLIXARD_SIM_SIM_TIMERS_H_
#define BLIXARD_SIM_SIM_TIMERS_H_

#include <cstdint>
#include <map>
#include <set>
#include <utility>

#include "core/env.h"
#include "sim/sim_clock.h"
#include "sim/world.h"

namespace blixard::sim {

class SimTimers final : public Timers {
 public:
  SimTimers(World* world, SimClock* clock, NodeId node);
  SimTimers(const SimTimers&) = delete;
  SimTimers& operator=(const SimTimers&) = delete;

  void ArmAt(TimerId id, MonoMicros deadline, Callback callback) override;
  void ArmAfter(TimerId id, int64_t delay_us, Callback callback) override;
  bool Disarm(TimerId id) override;
  bool IsArmed(TimerId id) const override;

  size_t armed() const { return timers_.size(); }
  uint64_t fired() const { return fired_; }

  void CheckInvariants() const;

 private:
  struct Timer {
    MonoMicros deadline;
    uint64_t arm_seq;
    Callback callback;
  };
  using Key = std::pair<MonoMicros, uint64_t>;  // (deadline, arm_seq)

  void Reschedule();
  void Fire();
  void Clear();

  World* world_;
  SimClock* clock_;
  NodeId node_;
  uint64_t next_arm_seq_ = 1;
  std::map<TimerId, Timer> timers_;
  std::set<std::pair<Key, TimerId>> order_;
  EventId pending_;
  SimMicros pending_at_us_ = 0;
  uint64_t fired_ = 0;
  bool firing_ = false;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIM_TIMERS_H_
