// LoopTimers: the production runtime's blixard::Timers (core/env.h) on an
// EventLoop's timer heap, read against the loop's LoopClock.
//
// Exactly env.h's semantics, which sim/sim_timers.h also implements, so the
// Host sees the same timers in simulation and production (the shared
// contract checks in sim/env_contract.h run against both):
//   - one-shot; disarmed before its callback runs, so the callback may
//     re-arm the same id;
//   - earlier deadlines fire first, equal deadlines in arm order (the loop's
//     heap orders by (deadline, arm order), and every Arm* adds a new loop
//     timer, so a re-armed id goes behind the timers already armed for the
//     same deadline);
//   - arming an armed id replaces its deadline and callback (the old
//     callback is destroyed without running); Disarm cancels;
//   - a late timer (the loop was busy or the process was stopped) fires as
//     soon as possible, in deadline order with the others then due;
//   - a callback never runs inside ArmAt/ArmAfter, even for a past deadline;
//     timers armed by a timer callback wait for the loop's next iteration,
//     as in the simulator.
// Each operation is O(log n) in the loop's pending timers.
//
// Thread: the loop thread only (every callback runs there). The loop must
// outlive this object; destroying it disarms every timer it armed.
#ifndef BLIXARD_NET_LOOP_LOOP_TIMERS_H_
#define BLIXARD_NET_LOOP_LOOP_TIMERS_H_

#include <cstddef>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "core/env.h"
#include "net/loop/event_loop.h"

namespace blixard::net {

class LoopTimers final : public Timers {
 public:
  // REQUIRES: loop != nullptr, and it outlives this object.
  explicit LoopTimers(EventLoop* loop);
  // Disarms every armed timer (their callbacks are destroyed unrun).
  ~LoopTimers() override;

  LoopTimers(const LoopTimers&) = delete;
  LoopTimers& operator=(const LoopTimers&) = delete;

  // Timers. REQUIRES (CHECKed), as env.h says: callback not empty; fewer
  // than kArmedMax armed or `id` already armed; a deadline at most
  // kDelayMaxUs after now; 0 <= delay_us <= kDelayMaxUs.
  void ArmAt(TimerId id, MonoMicros deadline, Callback callback) override;
  void ArmAfter(TimerId id, int64_t delay_us, Callback callback) override;
  bool Disarm(TimerId id) override;
  bool IsArmed(TimerId id) const override;

  size_t armed() const { return armed_.size(); }
  uint64_t fired() const { return fired_; }

  void CheckInvariants() const;

 private:
  struct Armed {
    EventLoop::TimerHandle handle;
    // Which arming of the id the loop timer belongs to: Fire CHECKs that
    // the loop never runs a replaced or disarmed one.
    uint64_t arm_seq;
    Callback callback;
  };

  void Fire(TimerId id, uint64_t arm_seq);

  EventLoop* const loop_;
  uint64_t next_arm_seq_ = 1;
  uint64_t fired_ = 0;
  absl::flat_hash_map<TimerId, Armed> armed_;
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_LOOP_LOOP_TIMERS_H_
