#include "net/loop/loop_timers.h"

#include <utility>

#include "core/base/check.h"

namespace blixard::net {

LoopTimers::LoopTimers(EventLoop* loop) : loop_(loop) {
  CHECK(loop != nullptr);
}

LoopTimers::~LoopTimers() {
  for (const auto& [id, armed] : armed_) {
    const bool cancelled = loop_->CancelTimer(armed.handle);
    CHECK(cancelled) << "timer " << id << " armed but not in the loop";
  }
}

void LoopTimers::ArmAt(TimerId id, MonoMicros deadline, Callback callback) {
  CHECK(callback) << "timer " << id << " armed without a callback";
  const MonoMicros now = loop_->clock().NowMicros();
  CHECK_LE(deadline, now + kDelayMaxUs)
      << "timer " << id << " deadline too far away";
  auto it = armed_.find(id);
  if (it != armed_.end()) {
    // Replaced: the old callback must never run.
    const bool cancelled = loop_->CancelTimer(it->second.handle);
    CHECK(cancelled) << "timer " << id << " armed but not in the loop";
    armed_.erase(it);
  }
  CHECK_LT(armed_.size(), kArmedMax) << "too many timers armed";
  const uint64_t arm_seq = next_arm_seq_++;
  // A fresh loop timer even for a re-arm: its handle is newer than every
  // timer already armed, which is what puts it behind them at an equal
  // deadline.
  const EventLoop::TimerHandle handle =
      loop_->AddTimerAt(deadline, [this, id, arm_seq] { Fire(id, arm_seq); });
  armed_.emplace(id, Armed{handle, arm_seq, std::move(callback)});
}

void LoopTimers::ArmAfter(TimerId id, int64_t delay_us, Callback callback) {
  CHECK_GE(delay_us, 0) << "timer " << id;
  CHECK_LE(delay_us, kDelayMaxUs) << "timer " << id;
  ArmAt(id, loop_->clock().NowMicros() + delay_us, std::move(callback));
}

bool LoopTimers::Disarm(TimerId id) {
  auto it = armed_.find(id);
  if (it == armed_.end()) return false;
  const bool cancelled = loop_->CancelTimer(it->second.handle);
  CHECK(cancelled) << "timer " << id << " armed but not in the loop";
  armed_.erase(it);
  return true;
}

bool LoopTimers::IsArmed(TimerId id) const { return armed_.count(id) != 0; }

void LoopTimers::Fire(TimerId id, uint64_t arm_seq) {
  auto it = armed_.find(id);
  CHECK(it != armed_.end()) << "timer " << id << " fired but not armed";
  CHECK_EQ(it->second.arm_seq, arm_seq)
      << "timer " << id << ": a replaced arming fired";
  // Disarmed before the callback runs (env.h), so the callback may re-arm
  // the same id; the callback object lives in this frame meanwhile.
  Callback callback = std::move(it->second.callback);
  armed_.erase(it);
  ++fired_;
  callback();
}

void LoopTimers::CheckInvariants() const {
  CHECK_LE(armed_.size(), kArmedMax);
  CHECK_LE(armed_.size(), loop_->timer_count());
  for (const auto& [id, armed] : armed_) {
    CHECK(loop_->IsTimerPending(armed.handle)) << "timer " << id;
    CHECK_LT(armed.arm_seq, next_arm_seq_) << "timer " << id;
    CHECK(armed.callback) << "timer " << id;
  }
}

}  // namespace blixard::net
