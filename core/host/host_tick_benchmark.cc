// The cost of one leader tick as the replicated state grows (issue 13,
// point 7): nothing on the loop may be O(state) per tick. A one-node
// cluster boots from a snapshot holding N finished tasks (and 100 running
// ones with timeouts), elects itself, and then each iteration moves its
// clock by one tick: the Raft tick, the agent, the leader controllers
// (worker liveness, task timeouts, AdvanceTime every second, which is
// proposed, made durable and applied), all through the real Host on the
// scripted Env. The figure: time per tick at N = 1,000 and N = 1,000,000
// (the issue asks for the second within 1.5x of the first).
//
//   bazel run -c opt //core/host:host_tick_benchmark
#include <cstdint>

#include "benchmark/benchmark.h"
#include "core/base/check.h"
#include "core/host/host.h"
#include "core/host/testing/host_harness.h"
#include "core/sm/testing/finished_tasks.h"

namespace blixard::host {
namespace {

constexpr NodeId kLeader(1);

void BM_LeaderTick(benchmark::State& state) {
  const size_t finished = static_cast<size_t>(state.range(0));
  sm::testing::FinishedTasksState shape;
  shape.finished = finished;
  shape.running = 100;
  const cluster::StateSnapshot fixture = sm::testing::MakeFinishedTasksSnapshot(shape);

  testing::TestCluster cluster({kLeader}, [&](HostOptions& options) {
    options.state_machine = sm::testing::RetainingOptions(finished);
    options.snapshot_interval_entries = 1'000'000;  // no snapshot in the loop
    // The harness's recording observer asks for state digests (an O(state)
    // serialization every 64 entries, for tests); a production node's
    // observer does not, so none is computed here either.
    options.digest_interval_entries = 0;
  });
  // The node's store holds the fixture as its snapshot (what a restart
  // after a long run finds), so Start restores it.
  raft::Snapshot snapshot;
  snapshot.set_data(fixture.SerializeAsString());
  snapshot.mutable_metadata()->set_index(fixture.applied_index());
  snapshot.mutable_metadata()->set_term(1);
  snapshot.mutable_metadata()->mutable_conf_state()->add_voters(kLeader.value());
  LogWrite write;
  write.snapshot = snapshot;
  raft::HardState hard_state;
  hard_state.set_term(1);
  hard_state.set_commit(fixture.applied_index());
  write.hard_state = hard_state;
  write.identity = StoreIdentity{1, kLeader};
  cluster.node(kLeader).store().Write(std::move(write), [] {});
  cluster.node(kLeader).store().CompleteAll();
  cluster.StartAll();
  cluster.ElectLeader();
  Host& host = cluster.host(kLeader);
  CHECK_GE(host.state_machine().tasks().size(), finished);

  const int64_t tick_us = cluster.node(kLeader).options().tick_us;
  for (auto _ : state) cluster.AdvanceBy(tick_us);
  CHECK(host.is_leader());
  state.counters["tasks"] = static_cast<double>(host.state_machine().tasks().size());
}
BENCHMARK(BM_LeaderTick)->Arg(1000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace blixard::host

