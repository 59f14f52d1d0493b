#include "sim/sim_timers.h"

#include <utility>

#include "core/base/check.h"

namespace blixard::sim {

SimTimers::SimTimers(World* world, SimClock* clock, NodeId node)
    : world_(world), clock_(clock), node_(node) {
  CHECK(world != nullptr);
  CHECK(clock != nullptr);
  CHECK(world->HasNode(node));
  clock_->SetChangeListener([this] { Reschedule(); });
  world_->AddLifecycleListener([this](NodeId changed, LifecycleChange change) {
    if (changed == node_ && change == LifecycleChange::kCrash) Clear();
  });
}

void SimTimers::ArmAt(TimerId id, MonoMicros deadline, Callback callback) {
  CHECK(callback);
  CHECK(!world_->IsCrashed(node_)) << "timer armed on crashed node " << node_;
  CHECK_LE(deadline, clock_->Peek() + kDelayMaxUs)
      << "timer " << id << " deadline too far away";
  auto it = timers_.find(id);
  if (it != timers_.end()) {
    order_.erase({Key{it->second.deadline, it->second.arm_seq}, id});
    timers_.erase(it);
  }
  CHECK_LT(timers_.size(), kArmedMax) << "too many timers on " << node_;
  const uint64_t arm_seq = next_arm_seq_++;
  timers_.emplace(id, Timer{deadline, arm_seq, std::move(callback)});
  order_.insert({Key{deadline, arm_seq}, id});
  Reschedule();
}

void SimTimers::ArmAfter(TimerId id, int64_t delay_us, Callback callback) {
  CHECK_GE(delay_us, 0);
  CHECK_LE(delay_us, kDelayMaxUs);
  ArmAt(id, clock_->Peek() + delay_us, std::move(callback));
}

bool SimTimers::Disarm(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  order_.erase({Key{it->second.deadline, it->second.arm_seq}, id});
  timers_.erase(it);
  Reschedule();
  return true;
}

bool SimTimers::IsArmed(TimerId id) const { return timers_.count(id) != 0; }

void SimTimers::Reschedule() {
  if (firing_) return;  // Fire() reschedules once it is done
  if (order_.empty()) {
    world_->Cancel(pending_);
    pending_ = EventId{};
    return;
  }
  const SimMicros at = clock_->WorldTimeFor(order_.begin()->first.first);
  if (world_->IsPending(pending_) && pending_at_us_ == at) return;
  world_->Cancel(pending_);
  pending_at_us_ = at;
  pending_ = world_->Schedule(at, node_, [this] { Fire(); });
}

void SimTimers::Fire() {
  pending_ = EventId{};
  firing_ = true;
  const MonoMicros now = clock_->NowMicros();
  // Only timers armed before this batch run in it (as in Redis's ae loop):
  // a callback that re-arms with no delay gets a new event, after the other
  // events due now, instead of spinning here.
  const uint64_t batch_end_seq = next_arm_seq_;
  while (!order_.empty()) {
    auto first = order_.end();
    for (auto it = order_.begin(); it != order_.end() && it->first.first <= now;
         ++it) {
      if (it->first.second < batch_end_seq) {
        first = it;
        break;
      }
    }
    if (first == order_.end()) break;
    const TimerId id = first->second;
    order_.erase(first);
    auto it = timers_.find(id);
    CHECK(it != timers_.end());
    Callback callback = std::move(it->second.callback);
    timers_.erase(it);
    ++fired_;
    callback();
    if (world_->IsCrashed(node_)) break;  // a callback may crash the node
  }
  firing_ = false;
  if (!world_->IsCrashed(node_)) Reschedule();
}

void SimTimers::Clear() {
  timers_.clear();
  order_.clear();
  world_->Cancel(pending_);
  pending_ = EventId{};
}

void SimTimers::CheckInvariants() const {
  CHECK_EQ(timers_.size(), order_.size());
  CHECK_LE(timers_.size(), kArmedMax);
  for (const auto& [key, id] : order_) {
    auto it = timers_.find(id);
    CHECK(it != timers_.end());
    CHECK_EQ(it->second.deadline, key.first);
    CHECK_EQ(it->second.arm_seq, key.second);
  }
  if (!order_.empty() && !firing_ && !world_->IsCrashed(node_) &&
      !world_->deferred_events(node_)) {
    CHECK(world_->IsPending(pending_)) << "armed timers but no event";
  }
}

}  // namespace blixard::sim
