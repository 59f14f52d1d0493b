// The leader's per-tick timeout lookup and the apply path with the
// retention rule evicting, at 1,000 and at 1,000,000 finished tasks
// (issue 13: a leader tick with a million finished tasks must cost about
// what it costs with a thousand).
//
//   bazel run -c opt //core/sm:finished_tasks_benchmark
//
// BM_TasksPastDeadline/<finished>: TasksPastDeadline on a state holding
//   <finished> finished tasks and 1,000 RUNNING ones with deadlines spread
//   over an hour, asked at the half hour for at most 16: what the leader's
//   timeout controller does every tick.
// BM_ScanForTimeouts/<finished>: the scan of every record it replaces, for
//   contrast.
// BM_ApplyLifecycleWithRetention/<finished>: one task's submit, start and
//   finish (three Apply calls) on a state that keeps <finished> finished
//   tasks: every finish evicts the oldest one. Reports entries_per_s.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "core/base/check.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/cluster_state_machine.h"
#include "core/sm/testing/finished_tasks.h"

namespace blixard {
namespace {

using sm::testing::FinishedTasksState;

constexpr size_t kRunningTasks = 1000;
constexpr size_t kPastDeadlineMax = 16;

struct Fixture {
  std::unique_ptr<ClusterStateMachine> sm;
  Index next;
  uint64_t serial = 0;  // ids of the tasks the benchmark adds
};

// Built once per size (a million-task state takes seconds to build) and kept
// for the benchmark's later runs: the lifecycle benchmark leaves it holding
// as many finished tasks as it found.
Fixture& FixtureOf(size_t finished) {
  static std::map<size_t, Fixture>* fixtures = new std::map<size_t, Fixture>();
  auto it = fixtures->find(finished);
  if (it != fixtures->end()) return it->second;
  FinishedTasksState shape;
  shape.finished = finished;
  shape.running = kRunningTasks;
  Fixture fixture;
  fixture.sm = std::make_unique<ClusterStateMachine>(
      sm::testing::RetainingOptions(finished));
  CHECK_OK(fixture.sm->RestoreFromProto(sm::testing::MakeFinishedTasksSnapshot(shape)));
  fixture.next = fixture.sm->applied_index().Next();
  return fixtures->emplace(finished, std::move(fixture)).first->second;
}

void BM_TasksPastDeadline(benchmark::State& state) {
  const ClusterStateMachine& sm = *FixtureOf(static_cast<size_t>(state.range(0))).sm;
  const uint64_t now_ms = sm.now_ms() + 1'800'000;
  size_t found = 0;
  for (auto _ : state) {
    const std::vector<const cluster::TaskRecord*> due =
        sm.TasksPastDeadline(now_ms, /*slack_ms=*/5'000, kPastDeadlineMax);
    found = due.size();
    benchmark::DoNotOptimize(due.data());
  }
  CHECK_EQ(found, kPastDeadlineMax);
  state.counters["finished"] = static_cast<double>(sm.finished_tasks());
}
BENCHMARK(BM_TasksPastDeadline)->Arg(1000)->Arg(1'000'000);

void BM_ScanForTimeouts(benchmark::State& state) {
  const ClusterStateMachine& sm = *FixtureOf(static_cast<size_t>(state.range(0))).sm;
  const uint64_t now_ms = sm.now_ms() + 1'800'000;
  size_t found = 0;
  for (auto _ : state) {
    found = 0;
    for (const auto& [id, t] : sm.tasks()) {
      if (t.state() != cluster::TASK_RUNNING || t.spec().timeout_secs() == 0) continue;
      if (t.assigned_time_ms() + t.spec().timeout_secs() * 1000 + 5'000 <= now_ms) ++found;
    }
    benchmark::DoNotOptimize(found);
  }
  CHECK_GT(found, kPastDeadlineMax);
}
BENCHMARK(BM_ScanForTimeouts)->Arg(1000)->Arg(1'000'000);

void BM_ApplyLifecycleWithRetention(benchmark::State& state) {
  const size_t finished = static_cast<size_t>(state.range(0));
  Fixture& fixture = FixtureOf(finished);
  ClusterStateMachine& sm = *fixture.sm;
  for (auto _ : state) {
    const std::string prefix = absl::StrCat("bench-", fixture.serial++, "-");
    fixture.next = sm::testing::ApplyTaskLifecycles(sm, fixture.next, 1, prefix,
                                                    sm.now_ms() + 1);
  }
  CHECK_EQ(sm.finished_tasks(), finished);  // every finish evicted one
  state.counters["entries_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * 3), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ApplyLifecycleWithRetention)->Arg(1000)->Arg(1'000'000);

}  // namespace
}  // namespace blixard
