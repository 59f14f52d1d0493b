#include "sim/world.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/base/check.h"

namespace blixard::sim {
namespace {

constexpr uint64_t kNodeByIdMax = 4096;  // node_by_id_ covers ids below this

uint64_t Mix(uint64_t hash, uint64_t value) {
  uint64_t state = hash ^ value;
  return SplitMix64(state);
}

}  // namespace

absl::string_view NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kUp:
      return "up";
    case NodeState::kPaused:
      return "paused";
    case NodeState::kCrashed:
      return "crashed";
  }
  return "?";
}

absl::string_view LifecycleChangeName(LifecycleChange change) {
  switch (change) {
    case LifecycleChange::kPause:
      return "pause";
    case LifecycleChange::kResume:
      return "resume";
    case LifecycleChange::kCrash:
      return "crash";
    case LifecycleChange::kRestart:
      return "restart";
  }
  return "?";
}

World::World(uint64_t seed) : root_(seed) {}

Rng World::NodeStream(NodeId node, absl::string_view name) const {
  return root_.Fork(name).Fork(node.value());
}

void World::AddNode(NodeId node) {
  CHECK(!node.is_none()) << "node id 0 means none";
  CHECK(nodes_.count(node) == 0) << "node " << node << " added twice";
  Node& added = nodes_.emplace(node, Node{}).first->second;
  if (node.value() < kNodeByIdMax) {
    if (node_by_id_.size() <= node.value()) node_by_id_.resize(node.value() + 1, nullptr);
    node_by_id_[node.value()] = &added;
  }
}

std::vector<NodeId> World::nodes() const {
  std::vector<NodeId> ids;
  ids.reserve(nodes_.size());
  for (const auto& [id, node] : nodes_) ids.push_back(id);
  return ids;
}

World::Node& World::node_ref(NodeId node) {
  return const_cast<Node&>(static_cast<const World*>(this)->node_ref(node));
}

const World::Node& World::node_ref(NodeId node) const {
  if (node.value() < node_by_id_.size() && node_by_id_[node.value()] != nullptr) {
    return *node_by_id_[node.value()];
  }
  auto it = nodes_.find(node);
  CHECK(it != nodes_.end()) << "unknown node " << node;
  return it->second;
}

NodeState World::state(NodeId node) const { return node_ref(node).state; }
uint64_t World::epoch(NodeId node) const { return node_ref(node).epoch; }

size_t World::deferred_events(NodeId node) const {
  size_t count = 0;
  for (const HeapEntry& entry : node_ref(node).deferred) {
    if (slots_[entry.slot].seq == entry.seq) ++count;
  }
  return count;
}

void World::AddLifecycleListener(LifecycleListener listener) {
  CHECK(listener);
  listeners_.push_back(std::move(listener));
}

void World::Notify(NodeId node, LifecycleChange change) {
  event_hash_ = Mix(event_hash_, 0xf00d0000u + static_cast<uint64_t>(change));
  event_hash_ = Mix(event_hash_, node.value());
  for (const LifecycleListener& listener : listeners_) listener(node, change);
  if (after_event_) after_event_();
}

bool World::Pause(NodeId node) {
  Node& n = node_ref(node);
  if (n.state != NodeState::kUp) return false;
  n.state = NodeState::kPaused;
  Notify(node, LifecycleChange::kPause);
  return true;
}

bool World::Resume(NodeId node) {
  Node& n = node_ref(node);
  if (n.state != NodeState::kPaused) return false;
  n.state = NodeState::kUp;
  std::vector<HeapEntry> deferred;
  deferred.swap(n.deferred);
  for (const HeapEntry& entry : deferred) {
    Slot& slot = slots_[entry.slot];
    if (slot.seq != entry.seq) continue;  // cancelled while deferred
    CHECK(slot.deferred);
    slot.deferred = false;
    // Late events run now, in the order they came due, after the events
    // already queued for now.
    slot.at_us = now_us_;
    Push(entry.slot, next_seq_++);
  }
  Notify(node, LifecycleChange::kResume);
  return true;
}

bool World::Crash(NodeId node) {
  Node& n = node_ref(node);
  if (n.state == NodeState::kCrashed) return false;
  n.state = NodeState::kCrashed;
  ++n.epoch;
  for (const HeapEntry& entry : n.deferred) {
    if (slots_[entry.slot].seq != entry.seq) continue;
    FreeSlot(entry.slot);
    ++events_dropped_;
  }
  n.deferred.clear();
  Notify(node, LifecycleChange::kCrash);
  return true;
}

EventId World::ScheduleCrash(NodeId node) {
  CHECK(HasNode(node)) << "unknown node " << node;
  return ScheduleAfter(0, kNoNode, [this, node] { Crash(node); });
}

bool World::Restart(NodeId node) {
  Node& n = node_ref(node);
  if (n.state != NodeState::kCrashed) return false;
  n.state = NodeState::kUp;
  ++n.epoch;
  Notify(node, LifecycleChange::kRestart);
  return true;
}

uint32_t World::AllocSlot() {
  if (!free_slots_.empty()) {
    const uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  CHECK_LT(slots_.size(), size_t{std::numeric_limits<uint32_t>::max()});
  slots_.emplace_back();
  return static_cast<uint32_t>(slots_.size() - 1);
}

void World::FreeSlot(uint32_t slot) {
  Slot& s = slots_[slot];
  s.seq = 0;
  s.deferred = false;
  s.callback = nullptr;
  free_slots_.push_back(slot);
}

void World::Push(uint32_t slot, uint64_t order) {
  const Slot& s = slots_[slot];
  heap_.push_back(HeapEntry{s.at_us, order, s.seq, slot});
  std::push_heap(heap_.begin(), heap_.end(), &World::HeapLater);
  ++live_events_;
}

EventId World::Schedule(SimMicros at_us, NodeId owner, Callback callback) {
  CHECK_GE(at_us, now_us_) << "an event cannot be scheduled in the past";
  CHECK(callback);
  CHECK_LT(live_events_, kPendingEventsMax) << "event queue runaway";
  uint64_t epoch = 0;
  if (!owner.is_none()) epoch = node_ref(owner).epoch;
  const uint32_t slot = AllocSlot();
  Slot& s = slots_[slot];
  s.seq = next_seq_++;
  s.at_us = at_us;
  s.owner = owner;
  s.epoch = epoch;
  s.deferred = false;
  s.callback = std::move(callback);
  Push(slot, s.seq);
  return EventId{s.seq, slot};
}

EventId World::ScheduleAfter(int64_t delay_us, NodeId owner,
                             Callback callback) {
  CHECK_GE(delay_us, 0);
  CHECK_LE(delay_us, std::numeric_limits<SimMicros>::max() - now_us_);
  return Schedule(now_us_ + delay_us, owner, std::move(callback));
}

bool World::IsPending(EventId id) const {
  if (!id.valid() || id.slot >= slots_.size()) return false;
  return slots_[id.slot].seq == id.seq;
}

bool World::Cancel(EventId id) {
  if (!IsPending(id)) return false;
  // The heap entry stays and is skipped when it surfaces (its seq no longer
  // matches); a deferred entry likewise.
  if (!slots_[id.slot].deferred) --live_events_;
  FreeSlot(id.slot);
  ++events_cancelled_;
  return true;
}

bool World::RunNext(SimMicros limit_us) {
  while (!heap_.empty()) {
    const HeapEntry top = heap_.front();
    if (top.at_us > limit_us) return false;
    std::pop_heap(heap_.begin(), heap_.end(), &World::HeapLater);
    heap_.pop_back();
    Slot& slot = slots_[top.slot];
    if (slot.seq != top.seq) continue;  // cancelled (or re-queued on resume)
    --live_events_;
    if (!slot.owner.is_none()) {
      Node& owner = node_ref(slot.owner);
      if (owner.state == NodeState::kCrashed || owner.epoch != slot.epoch) {
        FreeSlot(top.slot);
        ++events_dropped_;
        continue;
      }
      if (owner.state == NodeState::kPaused) {
        slot.deferred = true;
        owner.deferred.push_back(top);
        ++events_deferred_;
        continue;
      }
    }
    CHECK_GE(top.at_us, now_us_);
    now_us_ = top.at_us;
    Callback callback = std::move(slot.callback);
    event_hash_ = Mix(event_hash_, static_cast<uint64_t>(top.at_us));
    event_hash_ = Mix(event_hash_, top.order);
    event_hash_ = Mix(event_hash_, slot.owner.value());
    current_event_ = EventInfo{top.at_us, top.order, slot.owner};
    FreeSlot(top.slot);
    ++events_run_;
    callback();
    if (after_event_) after_event_();
    return true;
  }
  return false;
}

bool World::Step() { return RunNext(std::numeric_limits<SimMicros>::max()); }

void World::RunUntil(SimMicros until_us) {
  CHECK_GE(until_us, now_us_);
  while (RunNext(until_us)) {
  }
  now_us_ = until_us;
}

bool World::RunUntilIdle(uint64_t events_max) {
  for (uint64_t i = 0; i < events_max; ++i) {
    if (!Step()) return true;
  }
  return live_events_ == 0;
}

void World::CheckInvariants() const {
  CHECK_GE(now_us_, 0);
  CHECK_LE(live_events_, heap_.size());
  for (const HeapEntry& entry : heap_) {
    CHECK_LT(entry.slot, slots_.size());
    const Slot& slot = slots_[entry.slot];
    if (slot.seq == entry.seq) {
      CHECK_GE(entry.at_us, now_us_) << "a queued event is in the past";
      CHECK(!slot.deferred);
      CHECK(slot.callback);
    }
  }
  for (const auto& [id, node] : nodes_) {
    if (id.value() < kNodeByIdMax) {
      CHECK_LT(id.value(), node_by_id_.size());
      CHECK_EQ(node_by_id_[id.value()], &node) << "node_by_id_ of " << id;
    }
    if (node.state != NodeState::kPaused) {
      for (const HeapEntry& entry : node.deferred) {
        CHECK_NE(slots_[entry.slot].seq, entry.seq)
            << "node " << id << " is not paused but has deferred events";
      }
    }
  }
  if (kExpensiveChecks) {
    std::vector<HeapEntry> heap = heap_;
    CHECK(std::is_heap(heap.begin(), heap.end(), &World::HeapLater));
  }
}

}  // namespace blixard::sim
