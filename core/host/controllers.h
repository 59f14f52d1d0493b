// LeaderControllers: the leader-only loops that keep the replicated
// scheduler moving when no client does: worker liveness from agents'
// heartbeats (WorkerLost after a TTL, back ONLINE when heard again), task
// timeouts that no worker reported, and the log clock (AdvanceTime) so
// backoffs and grace periods end.
//
// They act only by proposing commands: every decision is made again by
// apply on every replica, so a controller that acts twice, or on a stale
// view, is harmless. Their memory (heartbeats seen, what was proposed
// recently) is this leader's alone and is rebuilt after each election
// (OnBecameLeader).
//
// Log time. Every command carries a leader-stamped `log_time_ms`; apply
// takes max(previous, entry), so state time never goes back. A leader
// stamps its own monotonic clock plus a signed offset fixed when it was
// elected, chosen so log time continues from the replicated clock: a new
// leader whose clock reads ahead of the old one (a longer uptime) does not
// move log time forward by the difference, and one whose clock lags does
// not stall it. Between elections log time runs at the leader's clock
// rate (drift included).
//
// Thread-safety: none; the Host's thread.
#ifndef BLIXARD_CORE_HOST_CONTROLLERS_H_
#define BLIXARD_CORE_HOST_CONTROLLERS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/env.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/cluster_state_machine.h"

namespace blixard::host {

// At most this many subjects (a worker, a task) are remembered as recently
// acted on; entries older than the TTL are forgotten first. Past the bound
// a controller still acts; a duplicate proposal is harmless.
inline constexpr size_t kControllerCooldownMax = 16384;
// At most this many task timeouts are proposed per tick: the rest follow
// on the next ticks.
inline constexpr size_t kTimeoutsPerTickMax = 256;
// Log time never goes beyond this (ms; ~35,000 years): keeps the
// signed offset arithmetic far from overflow.
inline constexpr uint64_t kLogTimeMsMax = uint64_t{1} << 50;

struct LeaderControllersOptions {
  // The leader proposes WorkerLost after this long without a heartbeat;
  // a subject is acted on at most once per this long.
  int64_t worker_ttl_us = 3'000'000;
  // AdvanceTime is proposed when nothing was proposed for this long.
  int64_t advance_time_us = 1'000'000;
  // Slack past a task's timeout before the leader declares it timed out
  // (the worker's own Executor kills it at the timeout).
  uint64_t task_timeout_slack_ms = 5'000;
  // The leader declares a task timed out only when its worker has been
  // silent this long: by then the worker's fence has stopped it (a worker
  // that is heard reports its own timeouts). HostOptions::WorkerFencedAfterUs.
  int64_t worker_fenced_after_us = 14'000'000;
};

class LeaderControllers {
 public:
  // Proposes a command (the caller stamps log time); returns whether the
  // core accepted it.
  using Propose = std::function<bool(cluster::Command command)>;

  // REQUIRES: sm non-null and outliving this object; timeouts > 0.
  LeaderControllers(LeaderControllersOptions options, const ClusterStateMachine* sm);

  // This node just became leader at `now`: forget the old view (every
  // worker gets a full TTL from now) and continue log time from the
  // replicated clock.
  void OnBecameLeader(MonoMicros now);

  // An agent heartbeat from `node_id` reached this leader.
  void OnHeartbeat(uint64_t node_id, MonoMicros now);

  // A proposal was accepted at `now` (AdvanceTime is needed only when idle).
  void OnProposal(MonoMicros now) { last_proposal_ = now; }

  // One pass of every controller. REQUIRES: this node leads.
  void Run(MonoMicros now, const Propose& propose);

  // The log time to stamp on a command proposed at `now`: never below the
  // replicated clock.
  uint64_t LogTimeMs(MonoMicros now) const;

  void CheckInvariants() const;

 private:
  // Whether `subject` may be acted on now (records it when so).
  bool Cooled(const std::string& subject, MonoMicros now);
  void ForgetOldCooldowns(MonoMicros now);
  void ProposeTimeouts(MonoMicros now, const Propose& propose);
  // When this leader last heard `node_id` (its election, when never).
  MonoMicros LastHeard(uint64_t node_id) const;

  const LeaderControllersOptions options_;
  const ClusterStateMachine* const sm_;

  std::map<uint64_t, MonoMicros> last_heartbeat_;  // by worker id
  std::map<std::string, MonoMicros> cooldown_;     // subject -> when acted
  MonoMicros last_proposal_ = 0;
  MonoMicros last_elected_ = 0;
  // Log time = (clock + this) in ms; signed: a leader's clock may read
  // ahead of or behind the replicated clock.
  int64_t log_time_offset_us_ = 0;
};

}  // namespace blixard::host

#endif  // BLIXARD_CORE_HOST_CONTROLLERS_H_
