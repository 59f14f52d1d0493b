// SimExecutor: a node's Executor in the simulated world.
//
// Tasks and VMs do not run; their lives are drawn from the node's "executor"
// sub-stream: a start delay, then (tasks) a run time and an exit code with a
// seeded failure rate, killed when timeout_us has passed on the node's clock
// if that comes first; (VMs) a boot time, then running until stopped, or
// dying at a random time when vm_crash_per_million says so. Stop() ends
// either after a stop delay. A planner hook lets a test or workload dictate
// one piece of work's fate.
//
// Exit codes follow the production executor's conventions: 0 success,
// 1..125 the program's failure, kExitTimedOut (124, as timeout(1)) at the
// timeout, kExitStopped (143 = 128 + SIGTERM) when stopped, kExitFailed (-1)
// when it could not start or a VM died.
//
// Work belongs to the machine, its news to the node process. A piece of
// work's life (running, exit) happens in world events whatever the node
// process does, as a child in its own session does; the WorkEvents about it
// are queued and delivered to the registered callback in node events, in
// order: a paused node hears them at resume, while its work ran on. A crash
// is, by a seeded draw per crash (machine_crash_per_million):
//   - a process crash: the work survives and keeps its timing; Running()
//     still lists it; events not yet delivered, and every later one, go to
//     the callback the restarted Host registers (none is lost or repeated);
//   - a machine crash (reboot): all work dies silently (killed_by_crash),
//     undelivered events are dropped, Running() is empty.
// Either way the callback is cleared so the restarted Host registers its
// own. last_crash_was_machine() tells the rest of the node (its clock).
//
// Running() lists work whose kExited has not been delivered yet, so a Host
// never sees work vanish without its exit, except after a machine crash.
//
// Thread: the simulation's single thread. Construct after the World and the
// clock; it registers a lifecycle listener, so it must outlive the run.
#ifndef BLIXARD_SIM_SIM_EXECUTOR_H_
#define BLIXARD_SIM_SIM_EXECUTOR_H_

#include <cstdint>
#include <functional>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/base/rng.h"
#include "core/env.h"
#include "sim/sim_clock.h"
#include "sim/world.h"

namespace blixard::sim {

struct SimExecutorOptions {
  int64_t task_start_min_us = 1'000;  // fork/exec
  int64_t task_start_max_us = 20'000;
  int64_t task_run_min_us = 10'000;
  int64_t task_run_max_us = 10 * kMicrosPerSecond;
  uint64_t task_failure_per_million = 100'000;  // nonzero exit code
  uint64_t start_failure_per_million = 0;       // could not start at all
  int64_t vm_boot_min_us = 200'000;
  int64_t vm_boot_max_us = 3 * kMicrosPerSecond;
  uint64_t vm_crash_per_million = 0;  // chance a VM dies within the window
  int64_t vm_crash_window_us = 60 * kMicrosPerSecond;
  int64_t stop_min_us = 1'000;
  int64_t stop_max_us = 100'000;
  // The share of node crashes that take the machine down (reboot: all work
  // dies); the rest are process crashes (work survives).
  uint64_t machine_crash_per_million = 250'000;

  absl::Status Validate() const;
};

// One piece of work's fate, dictated by a planner.
struct SimWorkPlan {
  bool fail_start = false;
  int64_t start_us = 0;  // until kRunning
  // Tasks: run time after kRunning, and the exit code if it finishes first.
  // VMs: time after kRunning at which it dies; < 0 never.
  int64_t run_us = 0;
  int32_t exit_code = 0;
};

class SimExecutor final : public Executor {
 public:
  static constexpr int32_t kExitTimedOut = 124;
  static constexpr int32_t kExitStopped = 143;
  static constexpr int32_t kExitFailed = -1;

  // Returns a plan for `spec`, or nullopt to draw one from the seed.
  using Planner = std::function<std::optional<SimWorkPlan>(const WorkSpec&)>;
  // Ground truth for oracles: an execution of `spec` on `node` began (Start
  // accepted: live = true) or ended (it exited, or died with the machine:
  // live = false), whatever the node process heard of it. `survived_crash`:
  // the node process crashed at least once while it was live; a live
  // execution is reported again (live = true, survived_crash = true) at the
  // first process crash it survives.
  using LiveObserver =
      std::function<void(NodeId node, const WorkSpec& spec, bool live, bool survived_crash)>;

  // REQUIRES: options.Validate().ok(); world->HasNode(node).
  SimExecutor(World* world, SimClock* clock, NodeId node,
              const SimExecutorOptions& options);
  SimExecutor(const SimExecutor&) = delete;
  SimExecutor& operator=(const SimExecutor&) = delete;

  void SetCallback(Callback callback) override;
  absl::Status Start(const WorkSpec& spec) override;
  bool Stop(WorkKind kind, absl::string_view id) override;
  std::vector<std::string> Running(WorkKind kind) const override;

  void SetPlanner(Planner planner) { planner_ = std::move(planner); }
  // REQUIRES: none set yet.
  void SetLiveObserver(LiveObserver observer);

  // Whether the last crash took the machine down (false before any crash).
  bool last_crash_was_machine() const { return last_crash_machine_; }
  // Executions alive now (not exited, whether or not their exit was heard).
  size_t live() const;

  uint64_t started() const { return started_; }
  uint64_t exited() const { return exited_; }
  uint64_t killed_by_crash() const { return killed_by_crash_; }
  // Work that was live across a process crash of its node, and survived.
  uint64_t survived_crash() const { return survived_crash_; }

  void CheckInvariants() const;

 private:
  using Key = std::pair<WorkKind, std::string>;
  struct Work {
    WorkSpec spec;
    MonoMicros started_at = 0;
    bool running = false;  // reached kRunning
    bool stopping = false;
    bool exited = false;   // gone; its kExited waits in the outbox
    bool survived_crash = false;
    EventId next;        // the pending transition (a world event)
    int64_t run_us = 0;  // after kRunning (see SimWorkPlan)
    int32_t exit_code = 0;
  };

  SimWorkPlan Draw(const WorkSpec& spec);
  void OnRunning(const Key& key);
  // Schedules the timeout kill at the instant the node's clock reads
  // started_at + timeout_us (the production executor times on its clock).
  // Never early: a clock that slows after this is re-checked at the kill;
  // one that speeds up or jumps makes the kill late by what it gained.
  void ScheduleTimeout(const Key& key);
  void Exit(const Key& key, WorkEvent::Reason reason, int32_t exit_code);
  void Emit(WorkEvent event);
  void ScheduleDelivery();
  void Deliver();
  void OnCrash();

  World* world_;
  SimClock* clock_;
  NodeId node_;
  SimExecutorOptions options_;
  Rng rng_;
  Rng crash_rng_;
  Callback callback_;
  Planner planner_;
  LiveObserver live_observer_;
  std::map<Key, Work> work_;
  std::deque<WorkEvent> outbox_;  // not yet delivered, in order
  EventId delivery_;              // the node event that delivers the outbox
  bool last_crash_machine_ = false;
  uint64_t started_ = 0;
  uint64_t exited_ = 0;
  uint64_t killed_by_crash_ = 0;
  uint64_t survived_crash_ = 0;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIM_EXECUTOR_H_
