#include "core/host/agent.h"

#include <iterator>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::host {

WorkerAgent::WorkerAgent(WorkerAgentOptions options, Executor* executor, Logger* logger,
                         const ClusterStateMachine* sm, Hooks hooks)
    : options_(std::move(options)),
      executor_(executor),
      logger_(logger),
      sm_(sm),
      hooks_(std::move(hooks)) {
  CHECK(executor_ != nullptr && logger_ != nullptr && sm_ != nullptr);
  CHECK(hooks_.send_heartbeat && hooks_.submit);
  CHECK_GT(options_.heartbeat_us, 0);
  CHECK_GT(options_.fence_us, options_.heartbeat_us);
}

void WorkerAgent::OnHeartbeatAck(const AgentHeartbeatAck& ack) {
  // Only a time this process sent counts: a forged or replayed ack must not
  // hold the fence open. (Sends are at or before last_heartbeat_.)
  if (ack.incarnation() != options_.incarnation || !ticked_ ||
      ack.sent_us() > last_heartbeat_ || ack.sent_us() <= last_acked_) {
    return;
  }
  last_acked_ = ack.sent_us();
}

void WorkerAgent::UpdateFence(MonoMicros now) {
  const bool fenced = now - last_acked_ >= options_.fence_us;
  if (fenced == fenced_) return;
  fenced_ = fenced;
  dirty_ = true;
  const uint64_t self = options_.self.value();
  if (!fenced_) {
    logger_->Info("n", self, " agent: a leader acknowledged a heartbeat again; tasks may start");
    return;
  }
  logger_->Warning("n", self, " agent: no heartbeat acknowledged by a leader for ",
                   (now - last_acked_) / kMicrosPerMilli, " ms: stopping ", running_tasks_.size(),
                   " tasks and ", surviving_tasks_.size(),
                   " unsettled survivors before the leader places them elsewhere");
  for (const auto& [task_id, attempt] : running_tasks_) {
    executor_->Stop(WorkKind::kTask, task_id);
    fenced_tasks_[task_id] = attempt;
  }
  for (const std::string& task_id : surviving_tasks_) executor_->Stop(WorkKind::kTask, task_id);
  surviving_tasks_.clear();
  claims_.clear();  // a claim applied later must not start: the view may be stale
}

void WorkerAgent::AdoptSurvivors() {
  for (std::string& id : executor_->Running(WorkKind::kTask)) {
    surviving_tasks_.insert(std::move(id));
  }
  for (std::string& name : executor_->Running(WorkKind::kVm)) {
    surviving_vms_.insert(std::move(name));
  }
  if (!surviving_tasks_.empty() || !surviving_vms_.empty()) {
    logger_->Info("n", options_.self.value(), " found ", surviving_tasks_.size(),
                  " tasks and ", surviving_vms_.size(), " VMs still running after a restart");
  }
  dirty_ = true;
}

void WorkerAgent::SettleSurvivingTasks() {
  const uint64_t self = options_.self.value();
  for (auto it = surviving_tasks_.begin(); it != surviving_tasks_.end();) {
    const cluster::TaskRecord* task = sm_->FindTask(*it);
    const bool active_here = task != nullptr && task->worker_id() == self &&
                             (task->state() == cluster::TASK_ASSIGNED ||
                              task->state() == cluster::TASK_RUNNING);
    if (active_here) {
      // Adopted as the current attempt: one execution of the task.
      running_tasks_[*it] = task->attempt();
      if (task->state() == cluster::TASK_ASSIGNED) {
        cluster::Command command;
        command.mutable_task_started()->set_task_id(*it);
        command.mutable_task_started()->set_worker_id(self);
        command.mutable_task_started()->set_attempt(task->attempt());
        Report(std::move(command), absl::StrCat("started/", *it, "/", task->attempt()));
      }
      logger_->Info("n", self, " adopted task ", *it, " (attempt ", task->attempt(),
                    ") that survived a restart");
    } else if (task != nullptr || caught_up_) {
      // Finished or placed elsewhere (or unknown to a caught-up node): its
      // exit event comes with reason kStopped and is not reported.
      executor_->Stop(WorkKind::kTask, *it);
      logger_->Info("n", self, " stopped task ", *it,
                    " that survived a restart but is not placed here");
    } else {
      ++it;  // the state does not know it yet: wait
      continue;
    }
    it = surviving_tasks_.erase(it);
  }
}

void WorkerAgent::SettleSurvivingVms() {
  const uint64_t self = options_.self.value();
  for (auto it = surviving_vms_.begin(); it != surviving_vms_.end();) {
    const cluster::VmRecord* vm = sm_->FindVm(*it);
    if (vm != nullptr && vm->worker_id() == self) {
      // Adopted: reconciliation stops it if it is not desired running.
      local_vms_[*it] = LocalVm{vm->generation(), VmPhase::kRunning, false};
      logger_->Info("n", self, " adopted VM ", *it, " that survived a restart");
    } else if (vm != nullptr || caught_up_) {
      executor_->Stop(WorkKind::kVm, *it);
      logger_->Info("n", self, " stopped VM ", *it,
                    " that survived a restart but is not placed here");
    } else {
      ++it;
      continue;
    }
    it = surviving_vms_.erase(it);
  }
}

void WorkerAgent::Report(cluster::Command command, std::string key) {
  auto it = reports_.find(key);
  if (it == reports_.end() && reports_.size() >= kAgentReportsMax) {
    logger_->Warning("n", options_.self.value(), " agent: ", kAgentReportsMax,
                     " reports already wait for the log; dropped ", key);
    return;
  }
  if (it == reports_.end()) {
    reports_.emplace(std::move(key), std::move(command));
  } else {
    it->second = std::move(command);
  }
}

bool WorkerAgent::ReportSatisfied(const cluster::Command& command) const {
  switch (command.op_case()) {
    case cluster::Command::kRegisterWorker:
      return sm_->FindWorker(command.register_worker().node_id()) != nullptr;
    case cluster::Command::kTaskStarted: {
      const cluster::TaskStarted& started = command.task_started();
      const cluster::TaskRecord* task = sm_->FindTask(started.task_id());
      return task == nullptr || task->attempt() != started.attempt() ||
             task->state() != cluster::TASK_ASSIGNED;
    }
    case cluster::Command::kTaskFinished: {
      const cluster::TaskFinished& finished = command.task_finished();
      const cluster::TaskRecord* task = sm_->FindTask(finished.task_id());
      return task == nullptr || task->attempt() != finished.result().attempt() ||
             (task->state() != cluster::TASK_ASSIGNED &&
              task->state() != cluster::TASK_RUNNING);
    }
    case cluster::Command::kVmObserved: {
      // The agent recomputes the next step every pass; an old one that
      // landed, or no longer fits the placement, is done.
      const cluster::VmObserved& observed = command.vm_observed();
      const cluster::VmRecord* vm = sm_->FindVm(observed.name());
      return vm == nullptr || vm->generation() != observed.generation() ||
             vm->worker_id() != observed.worker_id() ||
             vm->observed() == observed.state();
    }
    default:
      return true;
  }
}

void WorkerAgent::Tick(MonoMicros now, NodeId leader) {
  if (!options_.worker.has_value()) return;
  now_ = now;
  const uint64_t self = options_.self.value();
  if (sm_->FindWorker(self) == nullptr &&
      now - last_registration_ >= options_.heartbeat_us) {
    last_registration_ = now;
    cluster::Command command;
    *command.mutable_register_worker() = *options_.worker;
    command.mutable_register_worker()->set_node_id(self);
    Report(std::move(command), "register");
  }
  if (!ticked_) {
    // The fence's starting point. A new process may hold tasks that
    // survived its predecessor, whose last acknowledged heartbeat it cannot
    // know: it gets half a fence to hear from a leader, not a whole one.
    ticked_ = true;
    last_acked_ = now - options_.fence_us / 2;
  }
  UpdateFence(now);
  if (now - last_heartbeat_ >= options_.heartbeat_us && !leader.is_none()) {
    last_heartbeat_ = now;
    AgentHeartbeat heartbeat;
    heartbeat.set_node_id(self);
    heartbeat.set_sent_us(now);
    heartbeat.set_incarnation(options_.incarnation);
    hooks_.send_heartbeat(leader, heartbeat);
    for (auto it = reports_.begin(); it != reports_.end();) {
      if (ReportSatisfied(it->second)) {
        it = reports_.erase(it);
      } else {
        ++it;
      }
    }
    // A copy: a submit answered at once may run agent code that edits
    // reports_.
    const std::map<std::string, cluster::Command> pending = reports_;
    for (const auto& [key, command] : pending) hooks_.submit(command);
  }

  // The rest is a function of the replicated state and of what the
  // executor runs: with neither changed since the last pass (and no start
  // to retry), it would issue the same Start/Stop calls (no-ops by then)
  // and the same reports, so a tick skips it.
  if (!dirty_) return;
  dirty_ = false;
  ReconcileTasks();
  ReconcileVms();
}

void WorkerAgent::ReconcileTasks() {
  const uint64_t self = options_.self.value();
  if (!surviving_tasks_.empty()) SettleSurvivingTasks();
  // Claim what is assigned here, start what the log shows claimed, stop
  // what moved away. Only this worker's work, through the state machine's
  // per-worker indexes.
  for (const cluster::TaskRecord* active : sm_->ActiveTasksOn(self)) {
    const cluster::TaskRecord& task = *active;
    auto running = running_tasks_.find(task.task_id());
    if (running != running_tasks_.end() && running->second == task.attempt()) continue;
    if (running != running_tasks_.end()) {
      executor_->Stop(WorkKind::kTask, task.task_id());
      continue;  // the new attempt starts once the old one has exited
    }
    if (task.state() == cluster::TASK_ASSIGNED) {
      if (fenced_) continue;  // claims resume with leader contact
      cluster::Command command;
      command.mutable_task_started()->set_task_id(task.task_id());
      command.mutable_task_started()->set_worker_id(self);
      command.mutable_task_started()->set_attempt(task.attempt());
      Report(std::move(command), absl::StrCat("started/", task.task_id(), "/", task.attempt()));
      claims_[task.task_id()] = task.attempt();
      continue;
    }
    // RUNNING here in the log, not running in this process.
    if (reports_.count(absl::StrCat("finished/", task.task_id(), "/", task.attempt())) > 0) {
      continue;  // it exited here: its result waits for the log
    }
    auto claim = claims_.find(task.task_id());
    if (claim != claims_.end() && claim->second == task.attempt() && !fenced_) {
      StartClaimed(task);
      continue;
    }
    auto fenced = fenced_tasks_.find(task.task_id());
    if (fenced != fenced_tasks_.end() && fenced->second == task.attempt()) {
      ReportLost(task, absl::StrCat("stopped by the worker's fence: no heartbeat acknowledged by a "
                                    "leader for ",
                                    options_.fence_us / kMicrosPerMilli, " ms"));
    } else if (claim != claims_.end() && claim->second == task.attempt()) {
      ReportLost(task, "not started: the worker lost contact with the leader");
    } else {
      // Neither running here nor among the survivors: it died with its
      // machine, or this process restarted between claim and start.
      ReportLost(task, "worker restarted while the task ran");
    }
  }
  // A task is active here exactly when its record names this worker (the
  // state machine keeps worker_id at 0 for tasks not placed).
  const auto placed_here = [&](const std::string& task_id, uint32_t attempt) {
    const cluster::TaskRecord* task = sm_->FindTask(task_id);
    return task != nullptr && task->worker_id() == self && task->attempt() == attempt;
  };
  for (const auto& [task_id, attempt] : running_tasks_) {
    if (!placed_here(task_id, attempt)) executor_->Stop(WorkKind::kTask, task_id);
  }
  for (auto* memo : {&claims_, &fenced_tasks_}) {
    for (auto it = memo->begin(); it != memo->end();) {
      it = placed_here(it->first, it->second) ? std::next(it) : memo->erase(it);
    }
  }
}

void WorkerAgent::StartClaimed(const cluster::TaskRecord& task) {
  WorkSpec spec;
  spec.kind = WorkKind::kTask;
  spec.id = task.task_id();
  spec.command = task.spec().command();
  spec.args.assign(task.spec().args().begin(), task.spec().args().end());
  spec.timeout_us = static_cast<int64_t>(task.spec().timeout_secs()) * kMicrosPerSecond;
  if (spec.command.empty()) spec.command = "true";
  const absl::Status started = executor_->Start(spec);
  if (started.ok()) {
    running_tasks_[task.task_id()] = task.attempt();
    claims_.erase(task.task_id());
    return;
  }
  logger_->Warning("n", options_.self.value(), " could not start task ", task.task_id(), ": ",
                   started.ToString());
  if (absl::IsInvalidArgument(started)) {
    // It will never start: its attempt ends as a failure (retried per the
    // task's policy).
    claims_.erase(task.task_id());
    ReportLost(task, absl::StrCat("could not start: ", started.message()));
    return;
  }
  dirty_ = true;  // busy or at capacity: retried on the next tick
}

void WorkerAgent::ReportLost(const cluster::TaskRecord& task, std::string why) {
  cluster::Command command;
  cluster::TaskFinished* finished = command.mutable_task_finished();
  finished->set_task_id(task.task_id());
  finished->set_worker_id(options_.self.value());
  finished->mutable_result()->set_attempt(task.attempt());
  finished->mutable_result()->set_exit_code(-1);
  finished->mutable_result()->set_error(std::move(why));
  Report(std::move(command), absl::StrCat("finished/", task.task_id(), "/", task.attempt()));
}

void WorkerAgent::ReconcileVms() {
  const uint64_t self = options_.self.value();
  if (!surviving_vms_.empty()) SettleSurvivingVms();
  // Run what is placed here and desired running; stop the rest. The log
  // learns what the executor sees one legal step at a time (the state
  // machine's transition table), each step resent until it lands.
  for (const cluster::VmRecord* placed : sm_->VmsOn(self)) {
    const cluster::VmRecord& vm = *placed;
    const std::string& name = vm.name();
    const bool want_running = vm.desired() == cluster::VM_DESIRED_RUNNING;
    auto local = local_vms_.find(name);
    if (local != local_vms_.end() && local->second.generation != vm.generation()) {
      // Placed here again after a migration away and back: a new life.
      if (local->second.phase != VmPhase::kExited) {
        executor_->Stop(WorkKind::kVm, name);
        continue;
      }
      local_vms_.erase(local);
      local = local_vms_.end();
    }
    // A failure is reported before a restart, and the restart waits.
    const bool failure_pending =
        local != local_vms_.end() && local->second.phase == VmPhase::kExited &&
        local->second.failed &&
        (vm.observed() != cluster::VM_FAILED ||
         now_ - local->second.exited_at < kAgentVmRestartBackoffUs);
    if (failure_pending) dirty_ = true;  // looked at again on the next tick
    if (want_running && !failure_pending &&
        (local == local_vms_.end() || local->second.phase == VmPhase::kExited)) {
      WorkSpec spec;
      spec.kind = WorkKind::kVm;
      spec.id = name;
      spec.command = vm.spec().image().empty() ? "vm" : vm.spec().image();
      spec.vcpus = static_cast<uint32_t>(vm.spec().vcpus());
      spec.memory_mb = vm.spec().memory_mb();
      spec.disk_gb = vm.spec().disk_gb();
      if (executor_->Start(spec).ok()) {
        local_vms_[name] = LocalVm{vm.generation(), VmPhase::kStarting, false};
      } else {
        dirty_ = true;  // retried on the next tick
      }
    } else if (!want_running && local != local_vms_.end() &&
               local->second.phase != VmPhase::kExited && !local->second.stopping) {
      if (executor_->Stop(WorkKind::kVm, name)) local->second.stopping = true;
    }
    local = local_vms_.find(name);
    cluster::VmObservedState target = cluster::VM_STOPPED;
    if (local != local_vms_.end()) {
      switch (local->second.phase) {
        case VmPhase::kStarting:
          target = cluster::VM_STARTING;
          break;
        case VmPhase::kRunning:
          target = local->second.stopping ? cluster::VM_STOPPING : cluster::VM_RUNNING;
          break;
        case VmPhase::kExited:
          target = local->second.failed ? cluster::VM_FAILED : cluster::VM_STOPPED;
          break;
      }
    } else if (want_running) {
      continue;  // could not start it yet; nothing true to report
    }
    const cluster::VmObservedState next = NextVmStep(vm.observed(), target);
    if (next == cluster::VM_OBSERVED_UNSPECIFIED) continue;
    cluster::Command command;
    cluster::VmObserved* observed = command.mutable_vm_observed();
    observed->set_name(name);
    observed->set_worker_id(self);
    observed->set_state(next);
    observed->set_generation(vm.generation());
    Report(std::move(command), absl::StrCat("vm/", name));
  }
  for (auto it = local_vms_.begin(); it != local_vms_.end();) {
    const cluster::VmRecord* vm = sm_->FindVm(it->first);
    if (vm == nullptr || vm->worker_id() != self) {
      if (it->second.phase == VmPhase::kExited) {
        it = local_vms_.erase(it);
        continue;
      }
      if (!it->second.stopping && executor_->Stop(WorkKind::kVm, it->first)) {
        it->second.stopping = true;
      }
    }
    ++it;
  }
}

// The next legal observed state on the way from `from` to `to`
// (sm/transitions.h), or UNSPECIFIED when there is nothing to report.
cluster::VmObservedState WorkerAgent::NextVmStep(cluster::VmObservedState from,
                                                 cluster::VmObservedState to) {
  if (from == to) return cluster::VM_OBSERVED_UNSPECIFIED;
  if (to == cluster::VM_FAILED) return cluster::VM_FAILED;
  switch (from) {
    case cluster::VM_OBSERVED_UNSPECIFIED:
      return cluster::VM_CREATING;
    case cluster::VM_CREATING:
      return to == cluster::VM_STOPPED ? cluster::VM_STOPPED : cluster::VM_STARTING;
    case cluster::VM_STARTING:
      return to == cluster::VM_RUNNING ? cluster::VM_RUNNING : cluster::VM_STOPPING;
    case cluster::VM_RUNNING:
      return cluster::VM_STOPPING;
    case cluster::VM_STOPPING:
      return cluster::VM_STOPPED;
    case cluster::VM_STOPPED:
    case cluster::VM_FAILED:
      return to == cluster::VM_STOPPED ? cluster::VM_STOPPED : cluster::VM_STARTING;
    default:
      return cluster::VM_OBSERVED_UNSPECIFIED;
  }
}

void WorkerAgent::OnWorkEvent(const WorkEvent& event, MonoMicros now, NodeId leader) {
  const uint64_t self = options_.self.value();
  dirty_ = true;
  if (event.kind == WorkKind::kTask) {
    // A survivor that exits before it was settled: settle first, so that
    // an adopted one reports its real end.
    if (surviving_tasks_.count(event.id) > 0) {
      SettleSurvivingTasks();
      surviving_tasks_.erase(event.id);
    }
    auto it = running_tasks_.find(event.id);
    if (it == running_tasks_.end()) return;
    const uint32_t attempt = it->second;
    cluster::Command command;
    // Running: the log said so before the start (the claim).
    if (event.state == WorkEvent::State::kRunning) return;
    running_tasks_.erase(it);
    // Stopped because the log moved it: nothing to report.
    if (event.reason == WorkEvent::Reason::kStopped) return;
    cluster::TaskFinished* finished = command.mutable_task_finished();
    finished->set_task_id(event.id);
    finished->set_worker_id(self);
    cluster::TaskResult* result = finished->mutable_result();
    result->set_attempt(attempt);
    result->set_exit_code(event.exit_code);
    result->set_success(event.reason == WorkEvent::Reason::kFinished && event.exit_code == 0);
    result->set_timed_out(event.reason == WorkEvent::Reason::kTimedOut);
    result->set_output_tail(event.output_tail);
    result->set_execution_time_ms(static_cast<uint64_t>(event.duration_us / kMicrosPerMilli));
    if (event.reason == WorkEvent::Reason::kFailed) result->set_error("could not run");
    reports_.erase(absl::StrCat("started/", event.id, "/", attempt));
    Report(std::move(command), absl::StrCat("finished/", event.id, "/", attempt));
    return;
  }
  if (surviving_vms_.count(event.id) > 0) {
    SettleSurvivingVms();
    surviving_vms_.erase(event.id);
  }
  auto it = local_vms_.find(event.id);
  if (it == local_vms_.end()) return;
  if (event.state == WorkEvent::State::kRunning) {
    it->second.phase = VmPhase::kRunning;
  } else {
    it->second.phase = VmPhase::kExited;
    it->second.failed = event.reason != WorkEvent::Reason::kStopped;
    it->second.stopping = false;
    it->second.exited_at = now;
  }
  Tick(now, leader);
}

void WorkerAgent::CheckInvariants() const {
  for (const std::string& id : surviving_tasks_) {
    CHECK(running_tasks_.count(id) == 0) << "task " << id << " both adopted and unsettled";
  }
  for (const auto& [id, attempt] : claims_) {
    CHECK(running_tasks_.count(id) == 0) << "task " << id << " both claimed and running";
  }
  CHECK(!fenced_ || claims_.empty()) << "a claim survived the fence";
  CHECK_LE(reports_.size(), kAgentReportsMax);
  CHECK_LE(running_tasks_.size() + local_vms_.size(), 2 * Executor::kRunningMax);
  for (const auto& [name, vm] : local_vms_) {
    CHECK(!(vm.stopping && vm.phase == VmPhase::kExited)) << "VM " << name
                                                          << " exited but still stopping";
  }
}

}  // namespace blixard::host
