// The whole simulated world under heavy faults, driven by a toy Host that
// uses every Env part the way the real one will (timers for ticks, transport
// for heartbeats, executor for work, rebuilt on restart). The same seed must
// give the same trace hash; different seeds must not.
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/fault_schedule.h"
#include "sim/sim_network.h"
#include "sim/sim_node_env.h"
#include "sim/trace.h"
#include "sim/world.h"

namespace blixard::sim {
namespace {

constexpr Timers::TimerId kTickTimer = 1;
constexpr int64_t kTickUs = 10 * kMicrosPerMilli;

// A stand-in for the Host: ticks, gossips a counter, runs tasks. Destroyed
// at a crash and rebuilt at restart, as the real Host will be.
class ToyHost {
 public:
  ToyHost(World* world, SimNodeEnv* env, TraceWriter* trace,
          const std::vector<NodeId>* peers)
      : world_(world),
        env_(env),
        trace_(trace),
        peers_(peers),
        rng_(env->RaftRng(world->epoch(env->node()))) {
    env_->transport().SetReceiver([this](Packet p) { OnPacket(p); });
    env_->executor().SetCallback([this](const WorkEvent& e) { OnWork(e); });
    env_->timers().ArmAfter(kTickTimer, kTickUs, [this] { Tick(); });
  }

 private:
  void Tick() {
    ++ticks_;
    const NodeId to = (*peers_)[rng_.Uniform(peers_->size())];
    if (to != env_->node()) {
      raft::Message m;
      m.set_type(raft::MSG_HEARTBEAT);
      m.set_commit(highest_);
      env_->transport().Send(to, m);
    }
    if (rng_.Chance(1, 50)) {
      WorkSpec spec;
      spec.id = absl::StrCat("t", env_->node().value(), "-", ticks_);
      spec.command = "work";
      spec.timeout_us = 2 * kMicrosPerSecond;
      (void)env_->executor().Start(spec);
    }
    // A jittered tick, like Raft's randomized election timeout.
    env_->timers().ArmAfter(kTickTimer,
                            kTickUs + static_cast<int64_t>(rng_.Uniform(1000)),
                            [this] { Tick(); });
  }
  void OnPacket(const Packet& p) {
    if (p.raft.commit() + 1 > highest_) {
      highest_ = p.raft.commit() + 1;
      if (highest_ % 16 == 0) {
        trace_->Event(world_->now_us(), "gossip",
                      JsonLine()
                          .Uint("node", env_->node().value())
                          .Uint("from", p.from.value())
                          .Uint("value", highest_)
                          .Int("clock", env_->clock().NowMicros()));
      }
    }
  }
  void OnWork(const WorkEvent& e) {
    if (e.state != WorkEvent::State::kExited) return;
    trace_->Event(world_->now_us(), "work",
                  JsonLine()
                      .Uint("node", env_->node().value())
                      .Str("id", e.id)
                      .Int("exit", e.exit_code)
                      .Int("duration_us", e.duration_us));
  }

  World* world_;
  SimNodeEnv* env_;
  TraceWriter* trace_;
  const std::vector<NodeId>* peers_;
  Rng rng_;
  uint64_t ticks_ = 0;
  uint64_t highest_ = 0;
};

struct RunResult {
  uint64_t trace_hash = 0;
  uint64_t events = 0;
  std::map<std::string, uint64_t> faults;
  SimNetworkStats network;
  std::string trace;
};

RunResult RunWorld(uint64_t seed, FaultProfile profile, int nodes,
                   SimMicros duration_us) {
  World world(seed);
  SimNetwork network(&world, SimNetworkOptions());
  std::vector<NodeId> ids;
  std::vector<std::unique_ptr<SimNodeEnv>> envs;
  std::ostringstream out;
  TraceWriter trace(&out);
  trace.Header(seed, static_cast<uint64_t>(nodes),
               JsonLine().Str("faults", FaultProfileName(profile)));
  for (int i = 1; i <= nodes; ++i) {
    const NodeId id(static_cast<uint64_t>(i));
    ids.push_back(id);
    world.AddNode(id);
    envs.push_back(std::make_unique<SimNodeEnv>(&world, &network, id,
                                                SimNodeEnvOptions()));
  }
  std::map<NodeId, std::unique_ptr<ToyHost>> hosts;
  for (size_t i = 0; i < ids.size(); ++i) {
    hosts[ids[i]] =
        std::make_unique<ToyHost>(&world, envs[i].get(), &trace, &ids);
  }
  // Registered after the envs' parts, so they have dropped their state first.
  world.AddLifecycleListener([&](NodeId node, LifecycleChange change) {
    if (change == LifecycleChange::kCrash) hosts.erase(node);
    if (change == LifecycleChange::kRestart) {
      hosts[node] = std::make_unique<ToyHost>(
          &world, envs[node.value() - 1].get(), &trace, &ids);
    }
  });
  FaultInjector::Targets targets;
  targets.world = &world;
  targets.network = &network;
  for (size_t i = 0; i < ids.size(); ++i)
    targets.clocks[ids[i]] = &envs[i]->clock();
  targets.trace = &trace;
  FaultInjector injector(targets);
  injector.Schedule(
      GenerateFaultSchedule(world.Stream("faults"), profile, ids, duration_us));
  for (SimMicros t = 0; t < duration_us; t += kMicrosPerSecond) {
    world.RunUntil(t + kMicrosPerSecond);
    world.CheckInvariants();
    network.CheckInvariants();
    for (const auto& env : envs) env->CheckInvariants();
  }
  RunResult result;
  result.events = world.events_run();
  result.trace_hash = trace.Result(true,
                                   JsonLine()
                                       .Uint("events", world.events_run())
                                       .Hex("event_hash", world.event_hash()),
                                   JsonLine().Uint("wall_ms", 0));
  result.faults = injector.applied();
  result.network = network.stats();
  result.trace = out.str();
  return result;
}

TEST(SimDeterminismTest, SameSeedSameTraceHashFor20Seeds) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const RunResult a =
        RunWorld(seed, FaultProfile::kHeavy, 5, 10 * kMicrosPerSecond);
    const RunResult b =
        RunWorld(seed, FaultProfile::kHeavy, 5, 10 * kMicrosPerSecond);
    ASSERT_EQ(a.trace_hash, b.trace_hash) << "seed " << seed;
    ASSERT_EQ(a.trace, b.trace) << "seed " << seed;
    EXPECT_GT(a.events, 5'000u);
  }
}

TEST(SimDeterminismTest, DifferentSeedsDiffer) {
  EXPECT_NE(
      RunWorld(1, FaultProfile::kDefault, 3, 5 * kMicrosPerSecond).trace_hash,
      RunWorld(2, FaultProfile::kDefault, 3, 5 * kMicrosPerSecond).trace_hash);
}

TEST(SimDeterminismTest, HeavyFaultsAreActuallyInjected) {
  std::map<std::string, uint64_t> total;
  SimNetworkStats network;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const RunResult r =
        RunWorld(seed, FaultProfile::kHeavy, 5, 30 * kMicrosPerSecond);
    for (const auto& [kind, count] : r.faults) total[kind] += count;
    network.lost += r.network.lost;
    network.duplicated += r.network.duplicated;
    network.dropped_partition += r.network.dropped_partition;
    network.dropped_node_down += r.network.dropped_node_down;
    network.clog_held += r.network.clog_held;
  }
  for (const char* kind : {"crash", "restart", "pause", "resume", "heal"}) {
    EXPECT_GT(total[kind], 0u) << kind;
  }
  EXPECT_GT(network.lost, 0u);
  EXPECT_GT(network.duplicated, 0u);
  EXPECT_GT(network.dropped_partition, 0u);
  EXPECT_GT(network.dropped_node_down, 0u);
  EXPECT_GT(network.clog_held, 0u);
}

TEST(SimDeterminismTest, NoFaultsRunsClean) {
  const RunResult r = RunWorld(9, FaultProfile::kNone, 3, 5 * kMicrosPerSecond);
  EXPECT_TRUE(r.faults.empty());
  EXPECT_EQ(r.network.lost, 0u);
  EXPECT_EQ(r.network.dropped_partition, 0u);
}

}  // namespace
}  // namespace blixard::sim
