#include "core/sm/testing/finished_tasks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/check.h"

namespace blixard::sm::testing {
namespace {

// The largest age bound the options accept (ClusterStateMachineOptions).
constexpr uint64_t kRetentionForeverMs = uint64_t{1} << 40;

std::string FixtureId(absl::string_view prefix, size_t i) {
  return absl::StrFormat("%s%08d", prefix, i);
}

cluster::TaskSpec OneCoreSpec(uint64_t timeout_secs) {
  cluster::TaskSpec spec;
  spec.set_command("/bin/true");
  spec.mutable_resources()->set_cpu_cores(1);
  spec.mutable_resources()->set_memory_mb(1);
  spec.mutable_resources()->set_disk_gb(1);
  spec.set_timeout_secs(timeout_secs);
  spec.set_max_attempts(1);
  return spec;
}

void SetFixtureCapacity(cluster::Resources& capacity) {
  capacity.set_cpu_cores(kWorkerCpuCoresMax);
  capacity.set_memory_mb(kWorkerMemoryMbMax);
  capacity.set_disk_gb(kWorkerDiskGbMax);
}

}  // namespace

ClusterStateMachineOptions RetainingOptions(size_t finished_max) {
  CHECK_GE(finished_max, 1u);
  ClusterStateMachineOptions options;
  options.finished_tasks_retained_max = finished_max;
  options.finished_task_retention_ms = kRetentionForeverMs;
  options.tasks_max = std::max(options.tasks_max, finished_max + kWorkerCpuCoresMax);
  return options;
}

cluster::StateSnapshot MakeFinishedTasksSnapshot(const FinishedTasksState& shape) {
  CHECK_LE(shape.running, kWorkerCpuCoresMax);
  CHECK_GE(shape.timeout_spread_secs, 1u);
  CHECK_LE(shape.timeout_spread_secs, kTaskTimeoutSecsMax);
  const uint64_t now_ms = shape.start_ms + shape.finished;
  cluster::StateSnapshot s;
  s.set_format_version(kSnapshotFormatVersion);
  s.set_now_ms(now_ms);
  cluster::WorkerRecord& worker = *s.add_workers();
  worker.set_node_id(kFixtureWorkerId);
  worker.set_address("fixture-worker:7000");
  SetFixtureCapacity(*worker.mutable_capacity());
  worker.mutable_reserved()->set_cpu_cores(shape.running);
  worker.mutable_reserved()->set_memory_mb(shape.running);
  worker.mutable_reserved()->set_disk_gb(shape.running);
  worker.set_status(cluster::WORKER_ONLINE);
  worker.set_registered_index(1);
  worker.set_status_since_ms(shape.start_ms);
  // Entry 1 registered the worker; each finished task took three entries.
  uint64_t index = 1;
  s.mutable_tasks()->Reserve(static_cast<int>(shape.finished + shape.running));
  for (size_t i = 0; i < shape.finished; ++i) {
    cluster::TaskRecord& t = *s.add_tasks();
    t.set_task_id(FixtureId("done-", i));
    *t.mutable_spec() = OneCoreSpec(0);
    t.set_state(cluster::TASK_SUCCEEDED);
    t.set_attempt(1);
    t.set_submit_index(index + 1);
    t.set_submit_time_ms(shape.start_ms + i);
    t.set_assigned_time_ms(shape.start_ms + i);
    t.set_finished_time_ms(shape.start_ms + i + 1);
    t.mutable_result()->set_success(true);
    t.mutable_result()->set_attempt(1);
    index += 3;
  }
  for (size_t i = 0; i < shape.running; ++i) {
    cluster::TaskRecord& t = *s.add_tasks();
    t.set_task_id(FixtureId("run-", i));
    *t.mutable_spec() = OneCoreSpec(1 + i % shape.timeout_spread_secs);
    t.set_state(cluster::TASK_RUNNING);
    t.set_worker_id(kFixtureWorkerId);
    t.set_attempt(1);
    t.set_submit_index(index + 1);
    t.set_submit_time_ms(now_ms);
    t.set_assigned_time_ms(now_ms);
    index += 2;
  }
  s.set_applied_index(index);
  return s;
}

cluster::Command SubmitOneCoreTask(const std::string& task_id) {
  cluster::Command c;
  c.mutable_submit_task()->set_task_id(task_id);
  *c.mutable_submit_task()->mutable_spec() = OneCoreSpec(0);
  return c;
}

cluster::Command StartFixtureTask(const std::string& task_id) {
  cluster::Command c;
  c.mutable_task_started()->set_task_id(task_id);
  c.mutable_task_started()->set_worker_id(kFixtureWorkerId);
  c.mutable_task_started()->set_attempt(1);
  return c;
}

cluster::Command FinishFixtureTask(const std::string& task_id) {
  cluster::Command c;
  cluster::TaskFinished& f = *c.mutable_task_finished();
  f.set_task_id(task_id);
  f.set_worker_id(kFixtureWorkerId);
  f.mutable_result()->set_success(true);
  f.mutable_result()->set_attempt(1);
  return c;
}

Index ApplyTaskLifecycles(ClusterStateMachine& sm, Index next, size_t n,
                          absl::string_view prefix, uint64_t log_time_ms) {
  for (size_t i = 0; i < n; ++i) {
    const std::string id = FixtureId(prefix, i);
    for (cluster::Command command :
         {SubmitOneCoreTask(id), StartFixtureTask(id), FinishFixtureTask(id)}) {
      command.set_log_time_ms(log_time_ms);
      const cluster::Result r = sm.Apply(next, command);
      CHECK_EQ(r.code(), cluster::RESULT_OK)
          << "fixture task " << id << ": " << r.message();
      next = next.Next();
    }
  }
  return next;
}

}  // namespace blixard::sm::testing
