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

void SchedulerChecker::OnApplied(NodeId node, Index index, const cluster::Command& command,
                                 const ClusterStateMachine& sm) {
  if (violation_ || index <= judged_) return;
  // After a gap the states between are unknown: the view is no previous
  // step, and the next state judged becomes the baseline (what is already
  // placed was placed before the view began; only the ONLINE rule needs a
  // previous step, every other check still runs).
  if (index != judged_.Next()) view_valid_ = false;
  judged_ = index;
  switch (command.op_case()) {
    case cluster::Command::kKvPut:
    case cluster::Command::kKvDelete:
    case cluster::Command::kKvCompareAndSwap:
      return;  // moves no work or workers: the view stays the previous step
    default:
      break;
  }
  const bool baseline = !view_valid_;
  if (baseline) view_ = View();
  view_valid_ = true;
  View& view = view_;
  // VMs by worker, in one pass over the VMs.
  std::vector<std::pair<uint64_t, const cluster::VmRecord*>> placed_vms;
  for (const auto& [name, vm] : sm.vms()) {
    if (vm.worker_id() != 0) placed_vms.emplace_back(vm.worker_id(), &vm);
  }
  std::stable_sort(placed_vms.begin(), placed_vms.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  auto next_vm = placed_vms.begin();
  for (const auto& [id, worker] : sm.workers()) {
    ++checks_;
    // Legal status transitions (a re-registered worker starts afresh).
    auto before = view.workers.find(id);
    if (before != view.workers.end() && before->second.second == worker.registered_index() &&
        before->second.first != worker.status() &&
        !sm::IsLegalWorkerTransition(before->second.first, worker.status())) {
      Fail(node, index, absl::StrCat("worker ", id, " went ",
                                     sm::WorkerStatusName(before->second.first), " -> ",
                                     sm::WorkerStatusName(worker.status()),
                                     ", which the transition table forbids"));
      return;
    }
    // Placement happens inside Apply, before or after the command's own
    // effect (time-driven requeues run first): work placed by a command that
    // also changed this worker's status was placed while it was ONLINE if it
    // was ONLINE on either side of the command.
    const bool was_online = before != view.workers.end() &&
                            before->second.second == worker.registered_index() &&
                            before->second.first == cluster::WORKER_ONLINE;
    const bool online = was_online || worker.status() == cluster::WORKER_ONLINE;
    view.workers[id] = {worker.status(), worker.registered_index()};
    // Reservations add up exactly and fit.
    Amounts used;
    for (const cluster::TaskRecord* task : sm.ActiveTasksOn(id)) {
      const cluster::TaskResources& r = task->spec().resources();
      used.cpu += r.cpu_cores();
      used.memory += r.memory_mb();
      used.disk += r.disk_gb();
      if (!HasAll(worker, r.required_features())) {
        Fail(node, index, absl::StrCat("task ", task->task_id(), " runs on worker ", id,
                                       ", which lacks a required feature"));
        return;
      }
      const std::pair<uint64_t, uint32_t> placement(id, task->attempt());
      auto seen = view.assigned.find(task->task_id());
      if (seen != view.assigned.end() && seen->second == placement) continue;
      if (!baseline && !online) {
        Fail(node, index,
             absl::StrCat("task ", task->task_id(), " was assigned to worker ", id,
                          " while it is ", sm::WorkerStatusName(worker.status()),
                          " (attempt ", task->attempt(), ", ", sm::TaskStateName(task->state()),
                          seen == view.assigned.end()
                              ? std::string(", not seen assigned before")
                              : absl::StrCat(", last seen on worker ", seen->second.first,
                                             " attempt ", seen->second.second),
                          ", command ", command.ShortDebugString().substr(0, 200), ")"));
        return;
      }
      view.assigned[task->task_id()] = placement;
    }
    while (next_vm != placed_vms.end() && next_vm->first < id) ++next_vm;
    for (; next_vm != placed_vms.end() && next_vm->first == id; ++next_vm) {
      const cluster::VmRecord& vm = *next_vm->second;
      const std::string& name = vm.name();
      used.cpu += vm.spec().vcpus();
      used.memory += vm.spec().memory_mb();
      used.disk += vm.spec().disk_gb();
      if (!HasAll(worker, vm.spec().features())) {
        Fail(node, index, absl::StrCat("VM ", name, " is placed on worker ", id,
                                       ", which lacks a required feature"));
        return;
      }
      const std::pair<uint64_t, uint64_t> placement(id, vm.generation());
      auto seen = view.placed.find(name);
      if (seen != view.placed.end() && seen->second == placement) continue;
      if (!baseline && !online) {
        Fail(node, index, absl::StrCat("VM ", name, " was placed on worker ", id,
                                       " while it is ", sm::WorkerStatusName(worker.status())));
        return;
      }
      view.placed[name] = placement;
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
}

}  // namespace blixard::sim
