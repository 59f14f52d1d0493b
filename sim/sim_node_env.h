// SimNodeEnv: one simulated node's Env (less the LogStore, which is SimDisk):
// its drifting Clock, its Timers, its Transport on the shared SimNetwork and
// its Executor, plus the node's own random stream for Raft.
//
// A SimNodeEnv lives for the whole run, across the node's crashes and
// restarts; the Host on top of it does not. On a crash the parts drop their
// state (timers disarmed, packets to the node dropped, receiver and executor
// callback cleared); the simulator then builds a new Host on the same
// SimNodeEnv at restart, which registers its callbacks again. Each crash is,
// by a seeded draw in the executor (SimExecutorOptions::
// machine_crash_per_million), either
//   - a process crash: the clock keeps running, like CLOCK_MONOTONIC across
//     a process restart, and the node's work survives; or
//   - a machine crash: the machine reboots, its work dies, and its clock
//     starts again at a small uptime in [kBootUptimeMinUs,
//     kBootUptimeMaxUs] (counted from the crash: the machine is up again,
//     the node process not yet).
//
//   World world(seed);
//   SimNetwork network(&world, SimNetworkOptions());
//   world.AddNode(NodeId(1));
//   SimNodeEnv env(&world, &network, NodeId(1), SimNodeEnvOptions());
//   Host host(env.MakeEnv(&disk), env.RaftRng(world.epoch(NodeId(1))), ...);
//
// Thread: the simulation's single thread. Construct after the World and the
// network; keep it alive for the World's whole run.
#ifndef BLIXARD_SIM_SIM_NODE_ENV_H_
#define BLIXARD_SIM_SIM_NODE_ENV_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/base/rng.h"
#include "core/env.h"
#include "sim/sim_clock.h"
#include "sim/sim_executor.h"
#include "sim/sim_network.h"
#include "sim/sim_timers.h"
#include "sim/world.h"

namespace blixard::sim {

// The longest uptime a simulated machine has when the run starts: a week.
// Real clusters mix machines booted minutes and weeks ago, so a leader's
// CLOCK_MONOTONIC can read days ahead of its predecessor's; anything derived
// from one node's clock and carried to another (log time) must survive that.
inline constexpr int64_t kClockUptimeMaxUs = 7LL * 24 * 3600 * kMicrosPerSecond;

// A rebooted machine's uptime when its clock starts again.
inline constexpr int64_t kBootUptimeMinUs = 5 * kMicrosPerSecond;
inline constexpr int64_t kBootUptimeMaxUs = 120 * kMicrosPerSecond;

struct SimNodeEnvOptions {
  // The clock starts at a seeded offset (the machine's uptime) in
  // [0, clock_offset_max_us] with a seeded drift in
  // [-drift_ppm_max, drift_ppm_max].
  int64_t clock_offset_max_us = kClockUptimeMaxUs;
  int64_t drift_ppm_max = 100;
  SimExecutorOptions executor;

  absl::Status Validate() const;
};

class SimNodeEnv {
 public:
  // Attaches `node` to `network`. REQUIRES: options.Validate().ok();
  // world->HasNode(node); node not attached to the network yet.
  SimNodeEnv(World* world, SimNetwork* network, NodeId node,
             const SimNodeEnvOptions& options);
  SimNodeEnv(const SimNodeEnv&) = delete;
  SimNodeEnv& operator=(const SimNodeEnv&) = delete;

  NodeId node() const { return node_; }
  SimClock& clock() { return clock_; }
  SimTimers& timers() { return timers_; }
  Transport& transport() { return *transport_; }
  SimExecutor& executor() { return executor_; }

  // The Env for a Host on this node, with the node's disk (SimDisk, owned
  // elsewhere). REQUIRES: log_store not null.
  Env MakeEnv(LogStore* log_store);

  // A fresh generator for the node's Raft core (randomized election
  // timeouts), from the World's "node" stream. Each restart should take a
  // new one: pass `incarnation` = world.epoch(node) so a restarted node does
  // not replay its first life's draws.
  Rng RaftRng(uint64_t incarnation) const;

  // Machine crashes (reboots) so far.
  uint64_t reboots() const { return reboots_; }

  void CheckInvariants() const;

 private:
  World* world_;
  NodeId node_;
  Rng reboot_rng_;
  uint64_t reboots_ = 0;
  SimClock clock_;
  SimTimers timers_;
  Transport* transport_;
  SimExecutor executor_;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIM_NODE_ENV_H_
