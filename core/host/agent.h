// WorkerAgent: this node as a worker of the replicated scheduler.
//
// The agent registers the node as a worker, heartbeats to the leader, starts
// and stops the tasks and VMs that the replicated state places here through
// the Executor, and reports what happened (TaskStarted, TaskFinished,
// VmObserved) as commands. It never decides placement: it only reconciles
// what this node runs with what the log says it should run.
//
// Reports are level-triggered: each is resubmitted every heartbeat until the
// replicated state shows it (or shows it no longer matters), so a lost
// proposal, a leader change or a restart never loses one, and a duplicate is
// harmless (the state machine rejects it).
//
// A task never runs twice at once. Two rules keep it so:
//   - Claim, then start. The agent first proposes TaskStarted for the
//     attempt the log assigns here, and starts the process only once it has
//     applied that claim (the attempt RUNNING here). A node whose view is
//     stale (it lags, the task has since moved on) makes a claim that apply
//     refuses, so it never starts an attempt that is no longer current.
//   - The fence. The leader acknowledges each heartbeat; with no
//     acknowledgement of a heartbeat sent in the last `fence_us`, the agent
//     stops every task it runs and starts none. The leader places a silent
//     worker's tasks elsewhere only after it has been silent for longer
//     than the fence can take (HostOptions::Validate checks the bound), so
//     a worker cut off from the leader has stopped its tasks before they
//     start elsewhere. Limit: a node process that is paused (SIGSTOP) cannot
//     fence; its tasks, which are separate processes, run on.
//
// Thread-safety: none; the Host's thread. Lifetime: owned by the Host; the
// Executor, Logger and state machine outlive it.
#ifndef BLIXARD_CORE_HOST_AGENT_H_
#define BLIXARD_CORE_HOST_AGENT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "core/base/logger.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/proto/cluster.pb.h"
#include "core/proto/host.pb.h"
#include "core/sm/cluster_state_machine.h"

namespace blixard::host {

// At most this many unacknowledged reports wait for the log; a report past
// it is dropped (the level-triggered reconciliation makes it again later).
inline constexpr size_t kAgentReportsMax = 4096;
// A VM that failed is started again only once the log holds its FAILED
// and this long has passed: a VM that cannot run (a missing image, a
// broken host) fails, and says so, instead of restarting on every tick.
inline constexpr int64_t kAgentVmRestartBackoffUs = 5'000'000;

struct WorkerAgentOptions {
  NodeId self;
  // The capacity this node offers; the agent does nothing without it.
  std::optional<cluster::RegisterWorker> worker;
  int64_t heartbeat_us = 500'000;
  // Tasks stop when no heartbeat sent this long ago or later was
  // acknowledged by a leader. REQUIRES: > heartbeat_us.
  int64_t fence_us = 10'000'000;
  // Tells this process's heartbeats from an earlier process's on the same
  // node (whose clock readings may overlap after a reboot): distinct per
  // process with high probability.
  uint64_t incarnation = 0;
};

class WorkerAgent {
 public:
  // What the agent asks of its Host. Both may run Host code that calls
  // back into the agent (a report that is answered at once).
  struct Hooks {
    // Sends `heartbeat` to `leader` (which may be this node).
    std::function<void(NodeId leader, const AgentHeartbeat& heartbeat)> send_heartbeat;
    // Submits `command` as a client request that may be forwarded to the
    // leader; the answer is ignored (the report is resent until it lands).
    std::function<void(cluster::Command command)> submit;
  };

  // REQUIRES: executor, logger and sm non-null and outliving the agent;
  // hooks set.
  WorkerAgent(WorkerAgentOptions options, Executor* executor, Logger* logger,
              const ClusterStateMachine* sm, Hooks hooks);

  // One reconciliation pass at `now`; `leader` is the known leader (none:
  // no heartbeat is sent). Cheap when nothing changed since the last pass.
  void Tick(MonoMicros now, NodeId leader);

  // Notes the work that survived a restart of this node's process (the
  // Executor's Running()), so that it is adopted, never started twice.
  // A survivor that the replicated state places here is adopted as the
  // current attempt (its exit is reported as usual); one the state says is
  // finished or placed elsewhere is stopped; one the state does not know
  // yet waits until the node has caught up (OnCaughtUp), then is stopped.
  // REQUIRES: called once, before the first Tick.
  void AdoptSurvivors();

  // The node knows a leader and has applied everything it knows committed:
  // survivors the state still does not know are not ours.
  bool caught_up() const { return caught_up_; }
  void OnCaughtUp() {
    caught_up_ = true;
    dirty_ = true;
  }

  // Something the reconciliation reads changed: an entry or a snapshot was
  // applied.
  void MarkDirty() { dirty_ = true; }

  // A leader acknowledged one of this agent's heartbeats. Acks for another
  // incarnation, or echoing a time this agent never sent, are ignored.
  void OnHeartbeatAck(const AgentHeartbeatAck& ack);

  // Whether the fence holds: no acknowledged heartbeat within fence_us, so
  // no task runs here.
  bool fenced() const { return fenced_; }

  // An executor event for this node's work.
  void OnWorkEvent(const WorkEvent& event, MonoMicros now, NodeId leader);

  void CheckInvariants() const;

 private:
  enum class VmPhase { kStarting, kRunning, kExited };
  struct LocalVm {
    uint64_t generation;
    VmPhase phase;
    bool stopping;
    bool failed = false;
    MonoMicros exited_at = 0;  // when its kExited arrived
  };

  void Report(cluster::Command command, std::string key);
  bool ReportSatisfied(const cluster::Command& command) const;
  void SettleSurvivingTasks();
  void SettleSurvivingVms();
  void UpdateFence(MonoMicros now);
  void ReconcileTasks();
  void StartClaimed(const cluster::TaskRecord& task);
  void ReportLost(const cluster::TaskRecord& task, std::string why);
  void ReconcileVms();
  static cluster::VmObservedState NextVmStep(cluster::VmObservedState from,
                                             cluster::VmObservedState to);

  const WorkerAgentOptions options_;
  Executor* const executor_;
  Logger* const logger_;
  const ClusterStateMachine* const sm_;
  const Hooks hooks_;

  // Unacknowledged reports, by key, resent until the log has them.
  std::map<std::string, cluster::Command> reports_;
  std::map<std::string, uint32_t> running_tasks_;  // task id -> attempt
  // Attempts this process claimed (TaskStarted proposed) and has not
  // started yet: started once the log shows the claim, never after a
  // restart (a new process cannot know whether the old one started it).
  std::map<std::string, uint32_t> claims_;  // task id -> attempt
  // Attempts the fence stopped: their end is reported as such.
  std::map<std::string, uint32_t> fenced_tasks_;  // task id -> attempt
  std::map<std::string, LocalVm> local_vms_;       // what the executor runs
  // Work that survived a restart and is not yet adopted or stopped.
  std::set<std::string> surviving_tasks_;
  std::set<std::string> surviving_vms_;
  bool caught_up_ = false;
  MonoMicros last_heartbeat_ = 0;
  MonoMicros now_ = 0;  // as of the last Tick
  // The newest heartbeat send time a leader acknowledged (or the fence's
  // starting point: see Tick).
  MonoMicros last_acked_ = 0;
  bool ticked_ = false;
  bool fenced_ = false;
  MonoMicros last_registration_ = 0;
  // Something the reconciliation reads changed since its last pass: an
  // entry or snapshot applied, an executor event, a start to retry.
  bool dirty_ = true;
};

}  // namespace blixard::host

#endif  // BLIXARD_CORE_HOST_AGENT_H_
