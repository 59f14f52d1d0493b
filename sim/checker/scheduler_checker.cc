#include "sim/checker/scheduler_checker.h"

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/sm/transitions.h"

namespace blixard::sim {
namespace {

struct Amounts {
  uint64_t cpu = 0, memory = 0, disk = 0;
  bool operator==(const Amounts& o) const {
    return cpu == o.cpu && memory == o.memory && disk == o.disk;
  }
};

std::string Describe(const Amounts& a) {
  return absl::StrCat(a.cpu, " cpu, ", a.memory, " MB, ", a.disk, " GB");
}

template <typename Features>
bool HasAll(const cluster::WorkerRecord& worker, const Features& required) {
  for (const std::string& feature : required) {
    if (std::find(worker.features().begin(), worker.features().end(), feature) ==
        worker.features().end()) {
      return false;
    }
  }
  return true;
}

}  // namespace

void SchedulerChecker::Fail(NodeId node, Index index, std::string detail) {
  if (violation_) return;
  violation_ = Violation{0, node, "scheduler invariants",
                         absl::StrCat("after applying index ", index.value(), ": ",
                                      detail)};
}

void SchedulerChecker::OnRecover(NodeId node) { views_.erase(node); }

void SchedulerChecker::OnApplied(NodeId node, Index index, const ClusterStateMachine& sm) {
  if (violation_) return;
  NodeView& view = views_[node];
  NodeView next;
  for (const auto& [id, worker] : sm.workers()) {
    ++checks_;
    next.statuses[id] = worker.status();
    next.registered[id] = worker.registered_index();
    // Legal status transitions (a re-registered worker starts afresh).
    auto before = view.statuses.find(id);
    if (before != view.statuses.end() && view.registered[id] == worker.registered_index() &&
        before->second != worker.status() &&
        !sm::IsLegalWorkerTransition(before->second, worker.status())) {
      Fail(node, index, absl::StrCat("worker ", id, " went ",
                                     sm::WorkerStatusName(before->second), " -> ",
                                     sm::WorkerStatusName(worker.status()),
                                     ", which the transition table forbids"));
      return;
    }
    // Reservations add up exactly and fit.
    Amounts used;
    for (const cluster::TaskRecord& task :
         sm.ListTasks(cluster::TASK_STATE_UNSPECIFIED, id)) {
      if (task.state() != cluster::TASK_ASSIGNED && task.state() != cluster::TASK_RUNNING) {
        continue;
      }
      const cluster::TaskResources& r = task.spec().resources();
      used.cpu += r.cpu_cores();
      used.memory += r.memory_mb();
      used.disk += r.disk_gb();
      if (!HasAll(worker, r.required_features())) {
        Fail(node, index, absl::StrCat("task ", task.task_id(), " runs on worker ", id,
                                       ", which lacks a required feature"));
        return;
      }
      next.assigned[task.task_id()] = {id, task.attempt()};
      auto seen = view.assigned.find(task.task_id());
      const bool new_assignment = seen == view.assigned.end() ||
                                  seen->second != std::make_pair(id, task.attempt());
      if (new_assignment && worker.status() != cluster::WORKER_ONLINE) {
        Fail(node, index, absl::StrCat("task ", task.task_id(), " was assigned to worker ",
                                       id, " while it is ",
                                       sm::WorkerStatusName(worker.status())));
        return;
      }
    }
    for (const auto& [name, vm] : sm.vms()) {
      if (vm.worker_id() != id) continue;
      used.cpu += vm.spec().vcpus();
      used.memory += vm.spec().memory_mb();
      used.disk += vm.spec().disk_gb();
      if (!HasAll(worker, vm.spec().features())) {
        Fail(node, index, absl::StrCat("VM ", name, " is placed on worker ", id,
                                       ", which lacks a required feature"));
        return;
      }
      next.placed[name] = {id, vm.generation()};
      auto seen = view.placed.find(name);
      const bool new_placement =
          seen == view.placed.end() || seen->second != std::make_pair(id, vm.generation());
      if (new_placement && worker.status() != cluster::WORKER_ONLINE) {
        Fail(node, index, absl::StrCat("VM ", name, " was placed on worker ", id,
                                       " while it is ", sm::WorkerStatusName(worker.status())));
        return;
      }
    }
    const Amounts reserved{worker.reserved().cpu_cores(), worker.reserved().memory_mb(),
                           worker.reserved().disk_gb()};
    if (!(reserved == used)) {
      Fail(node, index, absl::StrCat("worker ", id, " reserves ", Describe(reserved),
                                     " but its work needs ", Describe(used)));
      return;
    }
    const cluster::Resources& cap = worker.capacity();
    if (used.cpu > cap.cpu_cores() || used.memory > cap.memory_mb() ||
        used.disk > cap.disk_gb()) {
      Fail(node, index, absl::StrCat("worker ", id, " is over-committed: ", Describe(used),
                                     " on a capacity of ", cap.cpu_cores(), " cpu, ",
                                     cap.memory_mb(), " MB, ", cap.disk_gb(), " GB"));
      return;
    }
  }
  view = std::move(next);
}

}  // namespace blixard::sim
