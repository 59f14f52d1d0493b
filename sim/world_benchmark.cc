// Events per second of the bare World event queue, and of ping-pong traffic
// over SimNetwork (the figure issue 6's throughput target builds on).
//
//   bazel run -c opt //sim:world_benchmark
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "sim/fault_schedule.h"
#include "sim/sim_network.h"
#include "sim/sim_node_env.h"
#include "sim/sim_timers.h"
#include "sim/world.h"

namespace blixard::sim {
namespace {

// `pending` self-rescheduling chains: each event schedules its successor at a
// pseudo-random delay, so the heap holds `pending` events throughout.
void BM_BareQueue(benchmark::State& state) {
  const auto pending = static_cast<int>(state.range(0));
  World world(1);
  Rng rng(2);
  std::function<void()> tick = [&] {
    world.ScheduleAfter(static_cast<int64_t>(rng.Range(1, 1000)), kNoNode,
                        tick);
  };
  for (int i = 0; i < pending; ++i) world.Schedule(0, kNoNode, tick);
  for (auto _ : state) world.Step();
  state.SetItemsProcessed(static_cast<int64_t>(world.events_run()));
}
BENCHMARK(BM_BareQueue)->Arg(16)->Arg(1024)->Arg(65536);

// Like the Host's tick: cancel and re-arm a timer on every event.
void BM_TimerRearm(benchmark::State& state) {
  World world(1);
  world.AddNode(NodeId(1));
  SimClock clock(&world, 0, 0);
  SimTimers timers(&world, &clock, NodeId(1));
  std::function<void()> tick = [&] {
    timers.ArmAfter(1, 1000, tick);
    timers.ArmAfter(2, 5000, [] {});  // re-armed before it fires
  };
  timers.ArmAfter(1, 1000, tick);
  for (auto _ : state) world.Step();
  state.SetItemsProcessed(static_cast<int64_t>(world.events_run()));
}
BENCHMARK(BM_TimerRearm);

// Every node keeps `window` heartbeats in flight to every other node and
// answers each one it receives; one event per delivery.
void BM_PingPong(benchmark::State& state) {
  const auto nodes = static_cast<uint64_t>(state.range(0));
  const auto window = static_cast<uint64_t>(state.range(1));
  World world(3);
  SimNetworkOptions options;
  options.loss_per_million = 0;
  SimNetwork network(&world, options);
  for (uint64_t i = 1; i <= nodes; ++i) {
    world.AddNode(NodeId(i));
    Transport* t = network.Attach(NodeId(i));
    t->SetReceiver([t](Packet packet) {
      raft::Message reply;
      reply.set_type(packet.raft.type() == raft::MSG_HEARTBEAT
                         ? raft::MSG_HEARTBEAT_RESPONSE
                         : raft::MSG_HEARTBEAT);
      reply.set_term(packet.raft.term());
      reply.set_commit(packet.raft.commit() + 1);
      t->Send(packet.from, std::move(reply));
    });
  }
  for (uint64_t i = 1; i <= nodes; ++i) {
    for (uint64_t j = 1; j <= nodes; ++j) {
      if (i == j) continue;
      for (uint64_t w = 0; w < window; ++w) {
        raft::Message m;
        m.set_type(raft::MSG_HEARTBEAT);
        m.set_term(1);
        network.transport(NodeId(i))->Send(NodeId(j), m);
      }
    }
  }
  for (auto _ : state) world.Step();
  state.SetItemsProcessed(static_cast<int64_t>(world.events_run()));
  state.counters["virtual_s"] = static_cast<double>(world.now_us()) / 1e6;
  state.counters["delivered"] = static_cast<double>(network.stats().delivered);
}
BENCHMARK(BM_PingPong)->Args({5, 1})->Args({5, 16})->Args({7, 4});

// The shape of a 5-node Raft cluster without Raft: every node ticks every
// 10 ms (jittered), node 1 sends a heartbeat to every peer each tick and
// peers answer, under the default fault profile. One iteration is one
// virtual second; `x_realtime` is the virtual:wall ratio of the bare world
// (the ceiling for `blixard sim`).
void BM_ToyCluster(benchmark::State& state) {
  constexpr uint64_t kNodes = 5;
  World world(4);
  SimNetwork network(&world, SimNetworkOptions());
  std::vector<std::unique_ptr<SimNodeEnv>> envs;
  std::vector<NodeId> ids;
  std::vector<std::function<void()>> ticks(kNodes + 1);
  for (uint64_t i = 1; i <= kNodes; ++i) {
    const NodeId id(i);
    ids.push_back(id);
    world.AddNode(id);
    envs.push_back(std::make_unique<SimNodeEnv>(&world, &network, id,
                                                SimNodeEnvOptions()));
  }
  auto start = [&](uint64_t i) {
    SimNodeEnv* env = envs[i - 1].get();
    auto rng = std::make_shared<Rng>(env->RaftRng(world.epoch(NodeId(i))));
    env->transport().SetReceiver([env](Packet p) {
      if (p.raft.type() == raft::MSG_HEARTBEAT) {
        raft::Message reply;
        reply.set_type(raft::MSG_HEARTBEAT_RESPONSE);
        reply.set_term(p.raft.term());
        env->transport().Send(p.from, std::move(reply));
      }
    });
    ticks[i] = [&, env, rng, i] {
      if (i == 1) {
        for (uint64_t j = 2; j <= kNodes; ++j) {
          raft::Message m;
          m.set_type(raft::MSG_HEARTBEAT);
          m.set_term(1);
          env->transport().Send(NodeId(j), std::move(m));
        }
      }
      env->timers().ArmAfter(
          1, 10'000 + static_cast<int64_t>(rng->Uniform(100)), ticks[i]);
    };
    env->timers().ArmAfter(1, 10'000, ticks[i]);
  };
  for (uint64_t i = 1; i <= kNodes; ++i) start(i);
  world.AddLifecycleListener([&](NodeId id, LifecycleChange change) {
    if (change == LifecycleChange::kRestart) start(id.value());
  });
  FaultInjector::Targets targets;
  targets.world = &world;
  targets.network = &network;
  FaultInjector injector(targets);
  // Far beyond what a benchmark run reaches, so every iteration is a full
  // virtual second.
  constexpr SimMicros kHorizon = 24 * 3600 * kMicrosPerSecond;
  injector.Schedule(GenerateFaultSchedule(
      world.Stream("faults"), FaultProfile::kDefault, ids, kHorizon));
  for (auto _ : state) {
    world.RunUntil(std::min(kHorizon, world.now_us() + kMicrosPerSecond));
  }
  state.SetItemsProcessed(static_cast<int64_t>(world.events_run()));
  state.counters["x_realtime"] = benchmark::Counter(
      static_cast<double>(world.now_us()) / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ToyCluster);

}  // namespace
}  // namespace blixard::sim
