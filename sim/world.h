// World: the simulator's deterministic discrete-event loop.
//
// Everything in a simulation happens as an event: a callback scheduled at a
// virtual time (microseconds since the start of the run). Events run in
// (time, sequence number) order, the sequence number being the order in which
// they were scheduled, so events at equal times run first-scheduled first.
// Virtual time does not flow; it jumps to the next event's time.
//
// The World also owns node lifecycle, because it decides which events may
// run: every event has an owner, either a node or the world itself (kNoNode).
//   - A paused node's events are deferred: they stay queued, in order, and
//     run at the resume time (time goes on while it is paused).
//   - A crashed node's events are dropped: its pending deliveries, timers and
//     disk completions vanish. Each crash and restart starts a new node epoch;
//     an event scheduled in an older epoch never runs.
// Components (network, disk, timers, executor, the Host wrapper) subscribe to
// lifecycle changes with AddLifecycleListener to drop their own state.
//
// Randomness comes from one root seed; Stream("network"), NodeStream(id) and
// friends fork independent sub-streams, so adding draws in one never shifts
// another.
//
// Deterministic by construction: no clocks, threads, std random, floating
// point or unordered iteration. Not thread-safe: one thread runs a World.
//
//   World world(seed);
//   world.Schedule(world.now_us() + 1000, NodeId(1), [] { ... });
//   world.RunUntil(60 * kMicrosPerSecond);
#ifndef BLIXARD_SIM_WORLD_H_
#define BLIXARD_SIM_WORLD_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/rng.h"
#include "core/base/types.h"

namespace blixard::sim {

// Virtual time in microseconds since the start of the run.
using SimMicros = int64_t;

// A handle to a scheduled event, for Cancel. Default-constructed: no event.
struct EventId {
  uint64_t seq = 0;  // 0: none
  uint32_t slot = 0;
  bool valid() const { return seq != 0; }
};

enum class NodeState : uint8_t { kUp = 0, kPaused = 1, kCrashed = 2 };
absl::string_view NodeStateName(NodeState state);

enum class LifecycleChange : uint8_t {
  kPause = 0,
  kResume = 1,
  kCrash = 2,
  kRestart = 3,
};
absl::string_view LifecycleChangeName(LifecycleChange change);

// The event being run (or last run), for hooks, logs and determinism checks.
struct EventInfo {
  SimMicros at_us = 0;
  uint64_t order = 0;  // position among equal times (sequence number)
  NodeId owner;        // kNoNode: a world event
};

class World {
 public:
  using Callback = std::function<void()>;
  using LifecycleListener = std::function<void(NodeId, LifecycleChange)>;

  // Bound on events pending at once: a runaway producer is a bug.
  static constexpr size_t kPendingEventsMax = 16 * 1024 * 1024;

  explicit World(uint64_t seed);
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  uint64_t seed() const { return root_.seed(); }
  SimMicros now_us() const { return now_us_; }

  // Independent random sub-streams of the root seed. Conventional names:
  // "network", "disk", "workload", "faults"; NodeStream for a node's own
  // (Raft's randomized timeouts), and NodeStream(id, "disk") for per-node
  // parts of a component.
  Rng Stream(absl::string_view name) const { return root_.Fork(name); }
  Rng NodeStream(NodeId node, absl::string_view name = "node") const;

  // ---- Nodes --------------------------------------------------------------

  // Registers a node, up. REQUIRES: !node.is_none(), not yet added.
  void AddNode(NodeId node);
  bool HasNode(NodeId node) const { return nodes_.count(node) != 0; }
  // The registered nodes, ascending.
  std::vector<NodeId> nodes() const;
  // REQUIRES: HasNode(node).
  NodeState state(NodeId node) const;
  bool IsUp(NodeId node) const { return state(node) == NodeState::kUp; }
  bool IsCrashed(NodeId node) const {
    return state(node) == NodeState::kCrashed;
  }
  // Incremented by each crash and restart.
  uint64_t epoch(NodeId node) const;

  // Lifecycle changes. Each returns false and does nothing when the node is
  // not in the state the change starts from (so a replayed or shrunk fault
  // schedule may contain changes that no longer apply):
  //   Pause: up -> paused.  Resume: paused -> up (deferred events run now,
  //   in their order).  Crash: up or paused -> crashed (its events are
  //   dropped).  Restart: crashed -> up (a new epoch).
  // Listeners run after the state changed, in registration order.
  bool Pause(NodeId node);
  bool Resume(NodeId node);
  bool Crash(NodeId node);
  bool Restart(NodeId node);
  void AddLifecycleListener(LifecycleListener listener);

  // Crashes `node` in a world event at the current time, after the running
  // event returns: the safe way for a node's own code (a fatal disk error in
  // SimDisk's on_write_error, a Host that must stop) to crash itself, since
  // Crash() runs listeners that destroy the Host while its method would
  // still be on the stack.
  EventId ScheduleCrash(NodeId node);

  // Runs after every event (and after every lifecycle change's listeners):
  // where the simulator checks its oracles. At most one; an empty function
  // removes it.
  void SetAfterEventHook(Callback hook) { after_event_ = std::move(hook); }

  // ---- Events -------------------------------------------------------------

  // Schedules `callback` at virtual time `at_us`, owned by `owner` (kNoNode:
  // the world; never deferred or dropped). An event for a crashed owner is
  // accepted and never runs. REQUIRES: at_us >= now_us(); callback set;
  // owner is kNoNode or added; fewer than kPendingEventsMax pending.
  EventId Schedule(SimMicros at_us, NodeId owner, Callback callback);
  // REQUIRES: delay_us >= 0.
  EventId ScheduleAfter(int64_t delay_us, NodeId owner, Callback callback);

  // Cancels a pending event. Returns false when it already ran, was dropped,
  // or was cancelled.
  bool Cancel(EventId id);
  bool IsPending(EventId id) const;

  // Runs the next runnable event, advancing time to it. Returns false when no
  // event is pending (idle). Events of paused nodes are moved aside and do
  // not count; events of crashed epochs are dropped and do not count.
  bool Step();
  // Like Step, but only runs an event whose time is <= limit_us; returns
  // false (time unchanged) when the next runnable event is later. For a
  // driver that checks oracles after every event:
  //   while (world.StepUntil(end)) CheckOracles();
  bool StepUntil(SimMicros limit_us) { return RunNext(limit_us); }
  // Runs every event with time <= until_us, then sets now to until_us.
  // REQUIRES: until_us >= now_us().
  void RunUntil(SimMicros until_us);
  // Runs until no event is pending, or `events_max` events ran. Returns true
  // when idle. Deferred events of a paused node do not count as pending.
  bool RunUntilIdle(uint64_t events_max);

  // Events pending in the queue (including cancelled ones not yet skipped
  // and not including deferred ones).
  size_t pending_events() const { return live_events_; }
  size_t deferred_events(NodeId node) const;

  // Counters.
  uint64_t events_run() const { return events_run_; }
  uint64_t events_dropped() const { return events_dropped_; }
  uint64_t events_deferred() const { return events_deferred_; }
  uint64_t events_cancelled() const { return events_cancelled_; }
  // A stable running hash of (time, sequence, owner) of every event run: two
  // runs with equal hashes ran the same events in the same order.
  uint64_t event_hash() const { return event_hash_; }
  // The event running now, or the last one run (zeros before the first).
  const EventInfo& current_event() const { return current_event_; }

  void CheckInvariants() const;

 private:
  struct Slot {
    uint64_t seq = 0;  // 0: free
    SimMicros at_us = 0;
    NodeId owner;
    uint64_t epoch = 0;
    bool deferred = false;
    Callback callback;
  };
  struct HeapEntry {
    SimMicros at_us;
    // Run order among equal times: the sequence number when scheduled, a
    // fresh one when re-queued at a resume. Identity stays `seq`, so an
    // EventId still cancels a re-queued event.
    uint64_t order;
    uint64_t seq;
    uint32_t slot;
  };
  struct Node {
    NodeState state = NodeState::kUp;
    uint64_t epoch = 0;
    // Deferred while paused, in the order they came due (seq guards slot
    // reuse after a Cancel).
    std::vector<HeapEntry> deferred;
  };

  static bool HeapLater(const HeapEntry& a, const HeapEntry& b) {
    if (a.at_us != b.at_us) return a.at_us > b.at_us;
    return a.order > b.order;
  }
  // Runs the next runnable event if its time is <= limit_us.
  bool RunNext(SimMicros limit_us);
  uint32_t AllocSlot();
  void FreeSlot(uint32_t slot);
  void Push(uint32_t slot, uint64_t order);
  void Notify(NodeId node, LifecycleChange change);
  Node& node_ref(NodeId node);
  const Node& node_ref(NodeId node) const;

  Rng root_;
  SimMicros now_us_ = 0;
  uint64_t next_seq_ = 1;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<HeapEntry> heap_;
  size_t live_events_ = 0;  // scheduled, not run/cancelled/dropped/deferred
  std::map<NodeId, Node> nodes_;
  // nodes_ by id value for small ids (every simulated cluster): the
  // network asks for a node's state several times per packet. std::map
  // nodes never move, so the pointers stay valid.
  std::vector<Node*> node_by_id_;
  std::vector<LifecycleListener> listeners_;
  Callback after_event_;

  uint64_t events_run_ = 0;
  uint64_t events_dropped_ = 0;
  uint64_t events_deferred_ = 0;
  uint64_t events_cancelled_ = 0;
  uint64_t event_hash_ = 0;
  EventInfo current_event_;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_WORLD_H_
