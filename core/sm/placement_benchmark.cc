// Placement throughput of the cluster state machine (issue 4, item 9).
//
//   bazel run -c opt //core/sm:placement_benchmark
//
// BM_ApplySubmitTask/<workers>: SubmitTask commands through
//   ClusterStateMachine::Apply, each placed by best fit on one of <workers>
//   ONLINE workers of varied capacity and feature sets (the whole apply path:
//   validation, session, record, index lookup, reservation). Reports
//   placements_per_s and bytes_per_task (memory of one task record in the
//   state machine: proto record, map node and key, per-worker index entry).
//   When the cluster is half full the state is rebuilt, outside the timing.
// BM_FinishWithBacklog/<workers>: TaskFinished on a full cluster with a
//   backlog of 50,000 pending tasks: each finish frees room, the scan walks
//   the backlog in (priority, submit index) order and backfills it.
// BM_IndexBestFit/<workers>: the placement index lookup alone.
// BM_NaiveBestFit/<workers>: the naive filter-and-score loop, for contrast.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "core/base/rng.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/cluster_state_machine.h"
#include "core/sm/placement_index.h"

namespace blixard {
namespace {

const char* const kFeatures[] = {"gpu", "ssd", "nvme", "arm", "x86", "fpga"};
constexpr uint64_t kFeatureCount = 6;

struct WorkerShape {
  uint64_t cpu, memory_mb, disk_gb;
  std::vector<std::string> features;
};

std::vector<WorkerShape> MakeWorkers(uint64_t count) {
  Rng rng(42);
  std::vector<WorkerShape> workers;
  for (uint64_t i = 0; i < count; ++i) {
    WorkerShape w;
    w.cpu = 8 * rng.Range(2, 16);            // 16..128 cores
    w.memory_mb = 4096 * rng.Range(8, 128);  // 32..512 GiB
    w.disk_gb = 100 * rng.Range(2, 40);      // 200..4000 GB
    const uint64_t n = rng.Uniform(4);
    for (uint64_t f = 0; f < n; ++f) {
      w.features.push_back(kFeatures[rng.Uniform(kFeatureCount)]);
    }
    std::sort(w.features.begin(), w.features.end());
    w.features.erase(std::unique(w.features.begin(), w.features.end()),
                     w.features.end());
    workers.push_back(std::move(w));
  }
  return workers;
}

std::vector<cluster::TaskSpec> MakeTaskSpecs(uint64_t count) {
  Rng rng(7);
  std::vector<cluster::TaskSpec> specs;
  for (uint64_t i = 0; i < count; ++i) {
    cluster::TaskSpec s;
    s.set_command("/usr/bin/work");
    s.add_args("--input=shard");
    auto& r = *s.mutable_resources();
    r.set_cpu_cores(rng.Range(1, 4));
    r.set_memory_mb(512 * rng.Range(1, 16));
    r.set_disk_gb(rng.Range(1, 50));
    if (rng.Chance(1, 4))
      r.add_required_features(kFeatures[rng.Uniform(kFeatureCount)]);
    s.set_timeout_secs(600);
    s.set_max_attempts(3);
    s.set_priority(static_cast<uint32_t>(rng.Uniform(4)));
    specs.push_back(std::move(s));
  }
  return specs;
}

std::unique_ptr<ClusterStateMachine> MakeCluster(
    const std::vector<WorkerShape>& workers, uint64_t& index) {
  ClusterStateMachineOptions options;
  options.workers_max = workers.size() + 1;
  auto sm = std::make_unique<ClusterStateMachine>(options);
  for (uint64_t i = 0; i < workers.size(); ++i) {
    cluster::Command c;
    auto& r = *c.mutable_register_worker();
    r.set_node_id(i + 1);
    r.set_address(absl::StrCat("10.1.", i / 256, ".", i % 256, ":7000"));
    r.mutable_capacity()->set_cpu_cores(workers[i].cpu);
    r.mutable_capacity()->set_memory_mb(workers[i].memory_mb);
    r.mutable_capacity()->set_disk_gb(workers[i].disk_gb);
    for (const auto& f : workers[i].features) r.add_features(f);
    const cluster::Result result = sm->Apply(Index(++index), c);
    if (result.code() != cluster::RESULT_OK) abort();
  }
  return sm;
}

uint64_t TotalCpu(const std::vector<WorkerShape>& workers) {
  uint64_t total = 0;
  for (const auto& w : workers) total += w.cpu;
  return total;
}

void BM_ApplySubmitTask(benchmark::State& state) {
  const auto workers = MakeWorkers(static_cast<uint64_t>(state.range(0)));
  const auto specs = MakeTaskSpecs(4096);
  const uint64_t cpu_budget = TotalCpu(workers) / 2;  // rebuild at half full
  uint64_t index = 0;
  auto sm = MakeCluster(workers, index);
  uint64_t cpu_used = 0, placed = 0, unplaced = 0, next_id = 0;
  uint64_t bytes_sample = 0, bytes_tasks = 0;
  cluster::Command c;
  c.mutable_request_id()->set_client_id(1);
  for (auto _ : state) {
    const cluster::TaskSpec& spec = specs[next_id % specs.size()];
    if (cpu_used + spec.resources().cpu_cores() > cpu_budget) {
      state.PauseTiming();
      index = 0;
      sm = MakeCluster(workers, index);
      cpu_used = 0;
      state.ResumeTiming();
    }
    auto& submit = *c.mutable_submit_task();
    submit.set_task_id(absl::StrCat("task-", next_id));
    *submit.mutable_spec() = spec;
    c.mutable_request_id()->set_sequence(++next_id);
    c.set_log_time_ms(next_id);
    const cluster::Result result = sm->Apply(Index(++index), c);
    if (result.task().state() == cluster::TASK_ASSIGNED) {
      ++placed;
      cpu_used += spec.resources().cpu_cores();
    } else {
      ++unplaced;
    }
    benchmark::DoNotOptimize(result);
  }
  // Memory per task record: the proto, the map node with its key, and the
  // (worker, task id) entry of the per-worker index; std::map/std::set nodes
  // carry 32 bytes of tree links each.
  for (const auto& [id, task] : sm->tasks()) {
    bytes_tasks += task.SpaceUsedLong() + sizeof(std::string) + id.capacity() +
                   32 + sizeof(std::pair<uint64_t, std::string>) +
                   id.capacity() + 32;
    if (++bytes_sample == 10'000) break;
  }
  state.SetItemsProcessed(static_cast<int64_t>(placed));
  state.counters["placements_per_s"] = benchmark::Counter(
      static_cast<double>(placed), benchmark::Counter::kIsRate);
  state.counters["unplaced"] = static_cast<double>(unplaced);
  state.counters["bytes_per_task"] =
      bytes_sample == 0 ? 0.0
                        : static_cast<double>(bytes_tasks) /
                              static_cast<double>(bytes_sample);
}
BENCHMARK(BM_ApplySubmitTask)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMicrosecond);

void BM_FinishWithBacklog(benchmark::State& state) {
  const auto workers = MakeWorkers(static_cast<uint64_t>(state.range(0)));
  const auto specs = MakeTaskSpecs(4096);
  uint64_t index = 0;
  auto sm = MakeCluster(workers, index);
  std::deque<std::pair<std::string, uint64_t>> running;  // (task, worker)
  absl::flat_hash_set<std::string> known;
  uint64_t next_id = 0, backlog = 0;
  constexpr uint64_t kBacklog = 50'000;
  while (backlog < kBacklog) {
    cluster::Command c;
    c.mutable_submit_task()->set_task_id(absl::StrCat("task-", next_id));
    *c.mutable_submit_task()->mutable_spec() = specs[next_id % specs.size()];
    ++next_id;
    const cluster::Result r = sm->Apply(Index(++index), c);
    if (r.task().state() == cluster::TASK_ASSIGNED) {
      running.emplace_back(r.task().task_id(), r.task().worker_id());
      known.insert(r.task().task_id());
    } else {
      ++backlog;
    }
  }
  uint64_t finished = 0, placed = 0;
  cluster::Command c;
  for (auto _ : state) {
    if (running.empty()) break;
    const auto [task_id, worker] = running.front();
    running.pop_front();
    auto& f = *c.mutable_task_finished();
    f.set_task_id(task_id);
    f.set_worker_id(worker);
    f.mutable_result()->set_attempt(1);
    f.mutable_result()->set_success(true);
    const cluster::Result r = sm->Apply(Index(++index), c);
    if (r.code() != cluster::RESULT_OK) abort();
    ++finished;
    for (const auto& t : sm->ListTasks(cluster::TASK_ASSIGNED, worker)) {
      if (known.insert(t.task_id()).second) {
        running.emplace_back(t.task_id(), worker);
        ++placed;
      }
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(finished));
  state.counters["backfilled"] = static_cast<double>(placed);
}
BENCHMARK(BM_FinishWithBacklog)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMicrosecond);

void BM_IndexBestFit(benchmark::State& state) {
  const auto workers = MakeWorkers(static_cast<uint64_t>(state.range(0)));
  const auto specs = MakeTaskSpecs(4096);
  sm::PlacementIndex index;
  for (uint64_t i = 0; i < workers.size(); ++i) {
    index.Add(
        i + 1,
        sm::Amounts{workers[i].cpu, workers[i].memory_mb, workers[i].disk_gb},
        workers[i].features);
  }
  std::vector<std::pair<sm::Amounts, std::vector<std::string>>> needs;
  for (const auto& s : specs) {
    needs.push_back(
        {sm::Amounts{s.resources().cpu_cores(), s.resources().memory_mb(),
                     s.resources().disk_gb()},
         {s.resources().required_features().begin(),
          s.resources().required_features().end()}});
  }
  uint64_t i = 0;
  for (auto _ : state) {
    const auto& [need, features] = needs[i++ % needs.size()];
    benchmark::DoNotOptimize(index.BestFit(need, features));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IndexBestFit)->Arg(1000)->Arg(10000);

void BM_NaiveBestFit(benchmark::State& state) {
  const auto workers = MakeWorkers(static_cast<uint64_t>(state.range(0)));
  const auto specs = MakeTaskSpecs(4096);
  std::vector<sm::NaiveCandidate> candidates;
  for (uint64_t i = 0; i < workers.size(); ++i) {
    candidates.push_back(
        {i + 1, true,
         sm::Amounts{workers[i].cpu, workers[i].memory_mb, workers[i].disk_gb},
         workers[i].features});
  }
  uint64_t i = 0;
  for (auto _ : state) {
    const auto& s = specs[i++ % specs.size()];
    const std::vector<std::string> features(
        s.resources().required_features().begin(),
        s.resources().required_features().end());
    benchmark::DoNotOptimize(sm::NaiveBestFit(
        candidates,
        sm::Amounts{s.resources().cpu_cores(), s.resources().memory_mb(),
                    s.resources().disk_gb()},
        features));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NaiveBestFit)->Arg(1000)->Arg(10000);

}  // namespace
}  // namespace blixard
