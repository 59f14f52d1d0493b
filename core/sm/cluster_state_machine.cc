#include "core/sm/cluster_state_machine.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/sm/cluster_records.h"
#include "core/sm/transitions.h"

namespace blixard {

using cluster::Result;
using cluster::ResultCode;
using sm::Amounts;
using sm::FreeOf;
using sm::Includes;
using sm::IsPlacedState;
using sm::SameMessage;
using sm::TaskNeed;
using sm::ToAmounts;
using sm::ToVector;
using sm::TruncateUtf8Prefix;
using sm::ValidateAmounts;
using sm::ValidateFeatures;
using sm::ValidateId;
using sm::ValidateKey;
using sm::ValidateTaskSpec;
using sm::ValidateText;
using sm::ValidateVmSpec;
using sm::ValidWorkerStatus;
using sm::VmNeed;

// What a command did: a code and message, and which record the reply shows
// (filled after the placement scan, so a reply shows the task as placed).
// The task and VM subjects point at the record itself: the scan between
// Dispatch and FillPayload changes records but never erases one, and a
// command that erases a record answers with a literal copy instead.
struct ClusterStateMachine::Outcome {
  enum class Subject { kNone, kWorker, kTask, kVm, kLiteral };
  ResultCode code = cluster::RESULT_OK;
  std::string message;
  Subject subject = Subject::kNone;
  uint64_t worker_id = 0;
  const cluster::TaskRecord* task = nullptr;  // kTask
  const cluster::VmRecord* vm = nullptr;      // kVm
  Result literal;  // kLiteral: a payload that no longer lives in the state
};

namespace {

using Outcome = ClusterStateMachine::Outcome;  // NOLINT: private, used below

// The maximum number of dirty workers the scan tries one by one for a pending
// task that was already known not to fit elsewhere; above it, the full index.
constexpr size_t kDirtyScanMax = 16;

Outcome Error(ResultCode code, std::string message) {
  Outcome o;
  o.code = code;
  o.message = std::move(message);
  return o;
}
Outcome Invalid(std::string message) {
  return Error(cluster::RESULT_INVALID_ARGUMENT, std::move(message));
}
Outcome Precondition(std::string message) {
  return Error(cluster::RESULT_FAILED_PRECONDITION, std::move(message));
}
// NOT_FOUND, one wording per kind of record.
Outcome WorkerNotFound(uint64_t node_id) {
  return Error(cluster::RESULT_NOT_FOUND,
               absl::StrCat("worker ", node_id, " is not registered"));
}
Outcome TaskNotFound(absl::string_view task_id) {
  return Error(cluster::RESULT_NOT_FOUND,
               absl::StrCat("task '", task_id, "' does not exist"));
}
Outcome VmNotFound(absl::string_view name) {
  return Error(cluster::RESULT_NOT_FOUND,
               absl::StrCat("vm '", name, "' does not exist"));
}
Outcome OkWorker(uint64_t node_id) {
  Outcome o;
  o.subject = Outcome::Subject::kWorker;
  o.worker_id = node_id;
  return o;
}
Outcome OkTask(const cluster::TaskRecord& task) {
  Outcome o;
  o.subject = Outcome::Subject::kTask;
  o.task = &task;
  return o;
}
Outcome OkVm(const cluster::VmRecord& vm) {
  Outcome o;
  o.subject = Outcome::Subject::kVm;
  o.vm = &vm;
  return o;
}

}  // namespace

absl::Status ClusterStateMachineOptions::Validate() const {
  if (offline_grace_ms < 1) {
    return absl::InvalidArgumentError("offline_grace_ms must be >= 1");
  }
  if (retry_backoff_base_ms < 1) {
    return absl::InvalidArgumentError("retry_backoff_base_ms must be >= 1");
  }
  if (retry_backoff_max_ms < retry_backoff_base_ms) {
    return absl::InvalidArgumentError(absl::StrCat(
        "retry_backoff_max_ms ", retry_backoff_max_ms,
        " is below retry_backoff_base_ms ", retry_backoff_base_ms));
  }
  if (retry_backoff_max_ms > (uint64_t{1} << 40)) {
    return absl::InvalidArgumentError("retry_backoff_max_ms exceeds 2^40");
  }
  if (offline_grace_ms > (uint64_t{1} << 40)) {
    return absl::InvalidArgumentError("offline_grace_ms exceeds 2^40");
  }
  if (client_sessions_max < 1) {
    return absl::InvalidArgumentError("client_sessions_max must be >= 1");
  }
  if (workers_max < 1 || tasks_max < 1 || pending_tasks_max < 1 ||
      vms_max < 1 || kv_keys_max < 1) {
    return absl::InvalidArgumentError(
        "workers_max, tasks_max, pending_tasks_max, vms_max and kv_keys_max "
        "must be >= 1");
  }
  if (pending_tasks_max > tasks_max) {
    return absl::InvalidArgumentError(
        absl::StrCat("pending_tasks_max ", pending_tasks_max,
                     " exceeds tasks_max ", tasks_max));
  }
  if (finished_tasks_retained_max < 1) {
    return absl::InvalidArgumentError(
        "finished_tasks_retained_max must be >= 1");
  }
  if (finished_task_retention_ms < 1 ||
      finished_task_retention_ms > (uint64_t{1} << 40)) {
    return absl::InvalidArgumentError(
        absl::StrCat("finished_task_retention_ms ", finished_task_retention_ms,
                     " must be 1 to 2^40"));
  }
  return absl::OkStatus();
}

ClusterStateMachine::ClusterStateMachine(ClusterStateMachineOptions options)
    : options_(options) {
  CHECK_OK(options_.Validate());
}

// ---------------------------------------------------------------------------
// Apply

cluster::Result ClusterStateMachine::Apply(Index index,
                                           const cluster::Command& command) {
  Result result = ApplyCommand(index, command);
  // After the reply is built (it copies the record it shows): a task that
  // finished in this very entry may be the one evicted.
  CollectFinishedTasks();
  return result;
}

cluster::Result ClusterStateMachine::ApplyCommand(
    Index index, const cluster::Command& command) {
  CHECK_GT(index, applied_index_) << "entries must be applied in log order";
  applied_index_ = index;
  now_ms_ = std::max(now_ms_, std::min(command.log_time_ms(), kLogTimeMsMax));
  ProcessTimers();

  Result result;
  const uint64_t client_id = command.request_id().client_id();
  const uint64_t sequence = command.request_id().sequence();
  if (client_id != 0) {
    if (sequence == 0) {
      if (scan_needed_) Scan();
      result.set_code(cluster::RESULT_INVALID_ARGUMENT);
      result.set_message(absl::StrCat("request of client ", client_id,
                                      " has sequence 0; sequences start at 1"));
      return result;
    }
    auto session = sessions_.find(client_id);
    if (session != sessions_.end()) {
      const uint64_t last = session->second.last_sequence();
      if (sequence == last) {
        if (scan_needed_) Scan();
        return session->second.last_result();  // a retry: the recorded answer
      }
      if (sequence < last) {
        if (scan_needed_) Scan();
        result.set_code(cluster::RESULT_OUT_OF_RANGE);
        result.set_message(
            absl::StrCat("request ", sequence, " of client ", client_id,
                         " is stale: the last one applied is ", last));
        return result;
      }
    }
  }

  Outcome outcome = Dispatch(index, command);
  if (scan_needed_) Scan();
  result.set_code(outcome.code);
  result.set_message(std::move(outcome.message));
  FillPayload(std::move(outcome), result);
  if (client_id != 0) RecordSession(client_id, sequence, index, result);
  DCHECK(fresh_.empty() && dirty_workers_.empty() && !scan_needed_ &&
         fresh_vms_.empty() && fresh_draining_.empty());
  return result;
}

cluster::Result ClusterStateMachine::ApplyEntry(Index index, absl::string_view data,
                                                cluster::Command* decoded) {
  cluster::Command local;
  cluster::Command& command = decoded != nullptr ? *decoded : local;
  // The size test comes first: ParseFromArray takes an int.
  if (data.size() > kCommandBytesMax ||
      !command.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    command.Clear();  // a failed parse may leave a partial message
    CHECK_GT(index, applied_index_) << "entries must be applied in log order";
    applied_index_ = index;
    // Neither the clock nor any task moved: the retention rule, which held
    // after the previous entry, still holds.
    Result result;
    result.set_code(cluster::RESULT_INVALID_ARGUMENT);
    result.set_message(absl::StrCat(
        "entry ", index.value(), " of ", data.size(),
        " bytes is not a cluster command",
        data.size() > kCommandBytesMax
            ? absl::StrCat(" (more than ", kCommandBytesMax, " bytes)")
            : ""));
    return result;
  }
  // Unknown fields would be copied into the records with the messages that
  // carry them (specs, capacities, results) and grow every snapshot.
  command.DiscardUnknownFields();
  return Apply(index, command);
}

ClusterStateMachine::Outcome ClusterStateMachine::Dispatch(
    Index index, const cluster::Command& command) {
  switch (command.op_case()) {
    case cluster::Command::kRegisterWorker:
      return DoRegisterWorker(index, command.register_worker());
    case cluster::Command::kSetWorkerStatus:
      return DoSetWorkerStatus(command.set_worker_status().node_id(),
                               command.set_worker_status().status(), "");
    case cluster::Command::kRemoveWorker:
      return DoRemoveWorker(command.remove_worker());
    case cluster::Command::kSubmitTask:
      return DoSubmitTask(index, command.submit_task());
    case cluster::Command::kTaskStarted:
      return DoTaskStarted(command.task_started());
    case cluster::Command::kTaskFinished:
      return DoTaskFinished(command.task_finished());
    case cluster::Command::kCancelTask:
      return DoCancelTask(command.cancel_task());
    case cluster::Command::kCreateVm:
      return DoCreateVm(index, command.create_vm());
    case cluster::Command::kStartVm:
      return DoSetVmDesired(command.start_vm().name(),
                            cluster::VM_DESIRED_RUNNING);
    case cluster::Command::kStopVm:
      return DoSetVmDesired(command.stop_vm().name(),
                            cluster::VM_DESIRED_STOPPED);
    case cluster::Command::kDeleteVm:
      return DoDeleteVm(command.delete_vm());
    case cluster::Command::kMigrateVm:
      return DoMigrateVm(command.migrate_vm());
    case cluster::Command::kVmObserved:
      return DoVmObserved(command.vm_observed());
    case cluster::Command::kWorkerLost: {
      const cluster::WorkerLost& lost = command.worker_lost();
      if (lost.reason().size() > kTaskErrorBytesMax) {
        return Invalid(absl::StrCat("worker_lost reason of ",
                                    lost.reason().size(), " bytes exceeds ",
                                    kTaskErrorBytesMax));
      }
      std::string error = ValidateText(lost.reason(), "worker_lost reason");
      if (!error.empty()) return Invalid(std::move(error));
      return DoSetWorkerStatus(lost.node_id(), cluster::WORKER_OFFLINE,
                               lost.reason());
    }
    case cluster::Command::kKvPut:
      return DoKvPut(index, command.kv_put());
    case cluster::Command::kKvDelete:
      return DoKvDelete(command.kv_delete());
    case cluster::Command::kKvCompareAndSwap:
      return DoKvCompareAndSwap(index, command.kv_compare_and_swap());
    case cluster::Command::kAdvanceTime:
      return Outcome{};
    case cluster::Command::kMemberJoined:
      return DoMemberJoined(index, command.member_joined());
    case cluster::Command::kMemberAttributes:
      return DoMemberAttributes(command.member_attributes());
    case cluster::Command::OP_NOT_SET:
      break;
  }
  return Invalid("command has no operation");
}

void ClusterStateMachine::FillPayload(Outcome&& outcome,
                                      Result& result) const {
  switch (outcome.subject) {
    case Outcome::Subject::kNone:
      return;
    case Outcome::Subject::kWorker:
      if (const auto* w = FindWorker(outcome.worker_id)) {
        *result.mutable_worker() = *w;
      }
      return;
    case Outcome::Subject::kTask:
      *result.mutable_task() = *outcome.task;
      return;
    case Outcome::Subject::kVm:
      *result.mutable_vm() = *outcome.vm;
      return;
    case Outcome::Subject::kLiteral:
      switch (outcome.literal.value_case()) {
        // The outcome is spent: move its payload instead of copying it.
        case Result::kWorker:
          *result.mutable_worker() =
              std::move(*outcome.literal.mutable_worker());
          break;
        case Result::kTask:
          *result.mutable_task() = std::move(*outcome.literal.mutable_task());
          break;
        case Result::kVm:
          *result.mutable_vm() = std::move(*outcome.literal.mutable_vm());
          break;
        case Result::kKv:
          *result.mutable_kv() = std::move(*outcome.literal.mutable_kv());
          break;
        case Result::kMember:
          *result.mutable_member() = std::move(*outcome.literal.mutable_member());
          break;
        case Result::VALUE_NOT_SET:
          break;
      }
      return;
  }
}

void ClusterStateMachine::RecordSession(uint64_t client_id, uint64_t sequence,
                                        Index index, const Result& result) {
  auto it = sessions_.find(client_id);
  if (it == sessions_.end()) {
    if (sessions_.size() >= options_.client_sessions_max) {
      // Deterministic LRU eviction: the session whose last write is oldest.
      const uint64_t victim = session_lru_.begin()->second;
      session_lru_.erase(session_lru_.begin());
      CHECK_EQ(sessions_.erase(victim), 1u);
    }
    it = sessions_.emplace(client_id, cluster::ClientSession{}).first;
    it->second.set_client_id(client_id);
  } else {
    CHECK_EQ(session_lru_.erase({it->second.last_index(), client_id}), 1u);
  }
  cluster::ClientSession& session = it->second;
  session.set_last_sequence(sequence);
  session.set_last_index(index.value());
  *session.mutable_last_result() = result;
  CHECK(session_lru_.insert({index.value(), client_id}).second);
}

// ---------------------------------------------------------------------------
// Workers

ClusterStateMachine::Outcome ClusterStateMachine::DoRegisterWorker(
    Index index, const cluster::RegisterWorker& c) {
  if (c.node_id() == 0)
    return Invalid("register_worker: node_id must be non-zero");
  std::string error =
      ValidateId(c.address(), "register_worker: address", kAddressBytesMax);
  if (!error.empty()) return Invalid(std::move(error));
  error = ValidateAmounts(ToAmounts(c.capacity()), "register_worker: capacity");
  if (!error.empty()) return Invalid(std::move(error));
  std::vector<std::string> features;
  error = ValidateFeatures(c.features(), "register_worker", features);
  if (!error.empty()) return Invalid(std::move(error));

  auto it = workers_.find(c.node_id());
  if (it != workers_.end()) {
    const cluster::WorkerRecord& w = it->second;
    if (w.address() == c.address() && SameMessage(w.capacity(), c.capacity()) &&
        ToVector(w.features()) == features) {
      return OkWorker(c.node_id());  // idempotent re-registration
    }
    return Error(cluster::RESULT_ALREADY_EXISTS,
                 absl::StrCat("worker ", c.node_id(),
                              " is already registered with a different "
                              "address, capacity or features"));
  }
  if (workers_.size() >= options_.workers_max) {
    return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                 absl::StrCat("worker table is full (", options_.workers_max,
                              " workers)"));
  }
  cluster::WorkerRecord& w = workers_[c.node_id()];
  w.set_node_id(c.node_id());
  w.set_address(c.address());
  *w.mutable_capacity() = c.capacity();
  for (std::string& f : features) w.add_features(std::move(f));
  w.mutable_reserved();  // present, all zero
  w.set_registered_index(index.value());
  w.set_status(cluster::WORKER_ONLINE);
  w.set_status_since_ms(now_ms_);
  EnterStatus(w, cluster::WORKER_STATUS_UNSPECIFIED);
  return OkWorker(c.node_id());
}

ClusterStateMachine::Outcome ClusterStateMachine::DoSetWorkerStatus(
    uint64_t node_id, cluster::WorkerStatus to, absl::string_view reason) {
  (void)reason;  // informational; the status is what is replicated
  if (!ValidWorkerStatus(to)) {
    return Invalid(absl::StrCat("worker status ", static_cast<int>(to),
                                " is not a valid status"));
  }
  auto it = workers_.find(node_id);
  if (it == workers_.end()) {
    return WorkerNotFound(node_id);
  }
  cluster::WorkerRecord& w = it->second;
  const cluster::WorkerStatus from = w.status();
  if (!sm::IsLegalWorkerTransition(from, to)) {
    return Precondition(absl::StrCat(
        "illegal worker status transition ", sm::WorkerStatusName(from), " -> ",
        sm::WorkerStatusName(to), " for worker ", node_id));
  }
  if (from == cluster::WORKER_OFFLINE) {
    CHECK_LE(offline_timers_.erase(
                 {w.status_since_ms() + options_.offline_grace_ms, node_id}),
             1u);
  }
  w.set_status(to);
  w.set_status_since_ms(now_ms_);
  EnterStatus(w, from);
  return OkWorker(node_id);
}

void ClusterStateMachine::EnterStatus(cluster::WorkerRecord& w,
                                      cluster::WorkerStatus from) {
  const uint64_t id = w.node_id();
  if (from == cluster::WORKER_DRAINING) draining_workers_.erase(id);
  SyncIndex(w);  // adds or removes the worker as it is ONLINE or not
  switch (w.status()) {
    case cluster::WORKER_ONLINE:
      dirty_workers_.insert(id);
      scan_needed_ = true;
      break;
    case cluster::WORKER_DRAINING:
      draining_workers_.insert(id);
      fresh_draining_.insert(id);
      scan_needed_ = true;  // its VMs migrate when there is room
      break;
    case cluster::WORKER_OFFLINE:
      offline_timers_.insert({now_ms_ + options_.offline_grace_ms, id});
      break;
    case cluster::WORKER_FAILED:
      RequeueWorkerWork(id, /*vms_too=*/true);
      break;
    default:
      break;
  }
}

ClusterStateMachine::Outcome ClusterStateMachine::DoRemoveWorker(
    const cluster::RemoveWorker& c) {
  auto it = workers_.find(c.node_id());
  if (it == workers_.end()) {
    return WorkerNotFound(c.node_id());
  }
  RequeueWorkerWork(c.node_id(), /*vms_too=*/true);
  cluster::WorkerRecord& w = it->second;
  if (w.status() == cluster::WORKER_OFFLINE) {
    offline_timers_.erase(
        {w.status_since_ms() + options_.offline_grace_ms, c.node_id()});
  }
  index_.Remove(c.node_id());
  draining_workers_.erase(c.node_id());
  dirty_workers_.erase(c.node_id());
  Outcome o;
  o.subject = Outcome::Subject::kLiteral;
  *o.literal.mutable_worker() = std::move(w);
  workers_.erase(it);
  return o;
}

void ClusterStateMachine::RequeueWorkerWork(uint64_t node_id, bool vms_too) {
  // Collected first: requeueing erases from the index being walked.
  std::vector<cluster::TaskRecord*> tasks;
  for (auto [it, end] = OnWorker(tasks_by_worker_, node_id); it != end; ++it) {
    tasks.push_back(it->second);
  }
  for (cluster::TaskRecord* task : tasks) RequeueTask(*task);
  if (!vms_too) return;
  std::vector<cluster::VmRecord*> vms;
  for (auto [it, end] = OnWorker(vms_by_worker_, node_id); it != end; ++it) {
    vms.push_back(it->second);
  }
  for (cluster::VmRecord* vm : vms) UnplaceVm(*vm);
}

// ---------------------------------------------------------------------------
// Reservations and the placement index

void ClusterStateMachine::SyncIndex(const cluster::WorkerRecord& w) {
  if (w.status() != cluster::WORKER_ONLINE) {
    index_.Remove(w.node_id());
    return;
  }
  const Amounts free = FreeOf(w);
  if (index_.Contains(w.node_id())) {
    index_.UpdateFree(w.node_id(), free);
  } else {
    index_.Add(w.node_id(), free, ToVector(w.features()));
  }
}

void ClusterStateMachine::Reserve(cluster::WorkerRecord& w, const Amounts& a) {
  cluster::Resources& r = *w.mutable_reserved();
  r.set_cpu_cores(r.cpu_cores() + a.cpu_cores);
  r.set_memory_mb(r.memory_mb() + a.memory_mb);
  r.set_disk_gb(r.disk_gb() + a.disk_gb);
  CHECK(ToAmounts(w.capacity()).Covers(ToAmounts(r)))
      << "reservation over-commits worker " << w.node_id();
  SyncIndex(w);
}

void ClusterStateMachine::Release(uint64_t worker_id, const Amounts& a) {
  auto it = workers_.find(worker_id);
  CHECK(it != workers_.end()) << "release on unknown worker " << worker_id;
  cluster::WorkerRecord& w = it->second;
  cluster::Resources& r = *w.mutable_reserved();
  CHECK(ToAmounts(r).Covers(a))
      << "release exceeds reservation on worker " << worker_id;
  r.set_cpu_cores(r.cpu_cores() - a.cpu_cores);
  r.set_memory_mb(r.memory_mb() - a.memory_mb);
  r.set_disk_gb(r.disk_gb() - a.disk_gb);
  SyncIndex(w);
  if (w.status() == cluster::WORKER_ONLINE) {
    dirty_workers_.insert(worker_id);
    scan_needed_ = true;
  }
}

void ClusterStateMachine::AssignTask(cluster::TaskRecord& task,
                                     cluster::WorkerRecord& w) {
  CHECK_EQ(task.state(), cluster::TASK_PENDING);
  CHECK_EQ(w.status(), cluster::WORKER_ONLINE);
  Reserve(w, TaskNeed(task));
  task.set_state(cluster::TASK_ASSIGNED);
  task.set_worker_id(w.node_id());
  task.set_attempt(task.attempt() + 1);
  task.set_assigned_time_ms(now_ms_);
  task.set_not_before_ms(0);  // meaningful only while PENDING
  CHECK(tasks_by_worker_.emplace(std::make_pair(w.node_id(), task.task_id()), &task).second);
}

void ClusterStateMachine::RequeueTask(cluster::TaskRecord& task) {
  CHECK(IsPlacedState(task.state()));
  UntrackDeadline(task);
  Release(task.worker_id(), TaskNeed(task));
  CHECK_EQ(tasks_by_worker_.erase({task.worker_id(), task.task_id()}), 1u);
  task.set_state(cluster::TASK_PENDING);
  task.set_worker_id(0);
  task.set_not_before_ms(0);
  EnqueuePending(task, /*fresh=*/true);
}

namespace {

// Deadline of a RUNNING task with a timeout: the timeout counts from the
// assignment (the Host's timeout controller has always used this field).
// Cannot overflow: assigned_time_ms <= kLogTimeMsMax and the timeout is at
// most kTaskTimeoutSecsMax.
uint64_t DeadlineMs(const cluster::TaskRecord& task) {
  return task.assigned_time_ms() + task.spec().timeout_secs() * 1000;
}
bool HasDeadline(const cluster::TaskRecord& task) {
  return task.state() == cluster::TASK_RUNNING && task.spec().timeout_secs() > 0;
}

}  // namespace

void ClusterStateMachine::TrackDeadline(const std::string& key,
                                        const cluster::TaskRecord& task) {
  if (!HasDeadline(task)) return;
  CHECK_EQ(key, task.task_id());
  CHECK(deadlines_.emplace(TaskKey(DeadlineMs(task), key), &task).second)
      << "task " << task.task_id() << " already has a deadline";
}

void ClusterStateMachine::UntrackDeadline(const cluster::TaskRecord& task) {
  if (!HasDeadline(task)) return;
  CHECK_EQ(deadlines_.erase(TaskKey(DeadlineMs(task), task.task_id())), 1u)
      << "task " << task.task_id() << " missing from the deadline index";
}

void ClusterStateMachine::FinishTask(const std::string& key,
                                     cluster::TaskRecord& task,
                                     cluster::TaskState state) {
  CHECK(sm::IsTerminal(state));
  CHECK_EQ(task.worker_id(), 0u);
  CHECK_EQ(key, task.task_id());
  task.set_state(state);
  task.set_finished_time_ms(now_ms_);
  CHECK(finished_.emplace(now_ms_, key).second);
}

void ClusterStateMachine::CollectFinishedTasks() {
  while (!finished_.empty()) {
    const auto oldest = finished_.begin();
    const bool over_count =
        finished_.size() > options_.finished_tasks_retained_max;
    // finished_time_ms <= now_ms_ <= kLogTimeMsMax and the age bound is at
    // most 2^40: the sum cannot overflow.
    const bool expired =
        oldest->first + options_.finished_task_retention_ms <= now_ms_;
    if (!over_count && !expired) return;
    auto record = tasks_.find(oldest->second);
    CHECK(record != tasks_.end() && sm::IsTerminal(record->second.state()))
        << "finished index names task " << oldest->second;
    finished_.erase(oldest);  // before the key it views
    tasks_.erase(record);
  }
}

std::vector<const cluster::TaskRecord*> ClusterStateMachine::TasksPastDeadline(
    uint64_t now_ms, uint64_t slack_ms, size_t max) const {
  std::vector<const cluster::TaskRecord*> out;
  // deadline + slack <= now_ms, written so that it cannot overflow.
  if (slack_ms > now_ms) return out;
  const uint64_t latest = now_ms - slack_ms;
  for (auto it = deadlines_.begin();
       it != deadlines_.end() && it->first.first <= latest && out.size() < max;
       ++it) {
    out.push_back(it->second);
  }
  return out;
}

void ClusterStateMachine::EnqueuePending(const cluster::TaskRecord& task,
                                         bool fresh) {
  PendingKey key{kTaskPriorityMax - task.spec().priority(), task.submit_index(),
                 task.task_id()};
  if (fresh) {
    fresh_.insert(key);
    scan_needed_ = true;
  }
  CHECK(pending_.emplace(std::move(key), TaskNeed(task)).second);
  need_floor_.Add(TaskNeed(task));
}

void ClusterStateMachine::DequeuePending(const cluster::TaskRecord& task) {
  CHECK_EQ(task.state(), cluster::TASK_PENDING);
  if (task.not_before_ms() > now_ms_) {
    CHECK_EQ(retry_timers_.erase({task.not_before_ms(), task.task_id()}), 1u);
    return;
  }
  PendingKey key{kTaskPriorityMax - task.spec().priority(), task.submit_index(),
                 task.task_id()};
  fresh_.erase(key);
  auto it = pending_.find(key);
  CHECK(it != pending_.end());
  need_floor_.Remove(it->second);
  pending_.erase(it);
}

uint64_t ClusterStateMachine::BackoffMs(uint32_t failed_attempts) const {
  CHECK_GE(failed_attempts, 1u);
  uint64_t backoff = options_.retry_backoff_base_ms;
  for (uint32_t i = 1; i < failed_attempts; ++i) {
    if (backoff >= options_.retry_backoff_max_ms) break;
    backoff *= 2;  // base <= max <= 2^40: no overflow before the cap applies
  }
  return std::min(backoff, options_.retry_backoff_max_ms);
}

void ClusterStateMachine::NeedFloor::Add(const Amounts& need) {
  ++cpu[need.cpu_cores];
  ++memory[need.memory_mb];
  ++disk[need.disk_gb];
}

void ClusterStateMachine::NeedFloor::Remove(const Amounts& need) {
  for (auto [map, value] : {std::make_pair(&cpu, need.cpu_cores),
                            std::make_pair(&memory, need.memory_mb),
                            std::make_pair(&disk, need.disk_gb)}) {
    auto it = map->find(value);
    CHECK(it != map->end() && it->second > 0) << "need floor out of step";
    if (--it->second == 0) map->erase(it);
  }
}

bool ClusterStateMachine::NeedFloor::CoveredBy(const Amounts& room) const {
  if (cpu.empty()) return false;
  return cpu.begin()->first <= room.cpu_cores &&
         memory.begin()->first <= room.memory_mb &&
         disk.begin()->first <= room.disk_gb;
}

// ---------------------------------------------------------------------------
// Time and the placement scan

void ClusterStateMachine::ProcessTimers() {
  while (!retry_timers_.empty() && retry_timers_.begin()->first <= now_ms_) {
    auto node = retry_timers_.extract(retry_timers_.begin());
    const cluster::TaskRecord& task = tasks_.find(node.value().second)->second;
    CHECK_EQ(task.state(), cluster::TASK_PENDING);
    EnqueuePending(task, /*fresh=*/true);
  }
  while (!offline_timers_.empty() &&
         offline_timers_.begin()->first <= now_ms_) {
    const uint64_t node_id = offline_timers_.begin()->second;
    offline_timers_.erase(offline_timers_.begin());
    CHECK_EQ(workers_.find(node_id)->second.status(), cluster::WORKER_OFFLINE);
    // The grace period is over: its tasks run elsewhere. VMs keep their
    // placement (and reservation) until the worker fails or is removed.
    RequeueWorkerWork(node_id, /*vms_too=*/false);
  }
}

// The ONLINE workers that gained room since the last scan, and the most room
// any of them has in each dimension, kept current as the scan places work on
// them. Work that fit nowhere at the last scan can fit now only on one of
// these, and only if `max` covers its need.
struct ClusterStateMachine::DirtyRoom {
  std::vector<uint64_t> workers;  // ascending node id
  Amounts max;

  void Refresh(const sm::PlacementIndex& index) {
    max = Amounts{};
    for (const uint64_t id : workers) {
      const Amounts free = index.Free(id);
      max.cpu_cores = std::max(max.cpu_cores, free.cpu_cores);
      max.memory_mb = std::max(max.memory_mb, free.memory_mb);
      max.disk_gb = std::max(max.disk_gb, free.disk_gb);
    }
  }
};

void ClusterStateMachine::Scan() {
  scan_needed_ = false;
  if (index_.empty()) {
    // No ONLINE worker: nothing fits anywhere, so everything waiting is
    // already known not to fit.
    fresh_.clear();
    fresh_vms_.clear();
    fresh_draining_.clear();
    dirty_workers_.clear();
    return;
  }
  DirtyRoom room;
  for (const uint64_t id : dirty_workers_) {
    if (index_.Contains(id)) room.workers.push_back(id);
  }
  room.Refresh(index_);
  ScanVms(room);
  ScanTasks(room);
  fresh_.clear();
  fresh_vms_.clear();
  fresh_draining_.clear();
  dirty_workers_.clear();
  scan_needed_ = false;  // releases inside the scan cannot happen
}

uint64_t ClusterStateMachine::BestFitOnDirty(
    const DirtyRoom& room, const Amounts& need,
    const google::protobuf::RepeatedPtrField<std::string>& features,
    uint64_t exclude) const {
  if (room.workers.size() > kDirtyScanMax) {
    return index_.BestFit(need, ToVector(features), exclude);
  }
  uint64_t target = 0;
  uint64_t best_score = 0;
  for (const uint64_t id : room.workers) {
    if (id == exclude) continue;
    const Amounts free = index_.Free(id);
    if (!free.Covers(need)) continue;
    if (!Includes(workers_.find(id)->second.features(), features)) continue;
    // The index's order: weighted free size, then node id (the leftover
    // differs from it by the need's weighted size, the same for all).
    const uint64_t score = sm::WeightedSize(free);
    if (target == 0 || score < best_score ||
        (score == best_score && id < target)) {
      target = id;
      best_score = score;
    }
  }
  return target;
}

void ClusterStateMachine::ScanVms(DirtyRoom& room) {
  if (room.workers.empty() && fresh_vms_.empty() && fresh_draining_.empty()) {
    return;  // nothing new and no room gained: no VM can move
  }
  // Places `vm` if it fits; `fresh` VMs are tried on every worker, the others
  // on the dirty workers only, after the cheap check on the dirty room.
  auto try_place = [&](cluster::VmRecord& vm, Amounts need, bool fresh,
                       uint64_t exclude) {
    uint64_t target = 0;
    if (fresh) {
      target = index_.BestFit(need, ToVector(vm.spec().features()), exclude);
    } else if (room.max.Covers(need)) {
      target = BestFitOnDirty(room, need, vm.spec().features(), exclude);
    }
    if (target == 0) return;
    PlaceVm(vm, workers_.find(target)->second);
    room.Refresh(index_);
  };
  // Waiting VMs by create index. PlaceVm erases only the VM it places from
  // waiting_vms_ and fresh_vms_, so iterators to the others stay valid.
  auto walk_fresh = [&](std::set<std::pair<uint64_t, std::string>,
                                 std::less<>>::iterator f) {
    while (f != fresh_vms_.end()) {
      auto waiting = waiting_vms_.find(*f);
      CHECK(waiting != waiting_vms_.end());
      cluster::VmRecord& vm = vms_.find(f->second)->second;
      ++f;
      try_place(vm, waiting->second, /*fresh=*/true, 0);
    }
  };
  if (room.workers.empty() || !waiting_vm_floor_.CoveredBy(room.max)) {
    // No old waiting VM fits in the dirty room: only fresh ones can move.
    walk_fresh(fresh_vms_.begin());
  } else {
    auto f = fresh_vms_.begin();  // the first fresh key >= it's key
    for (auto it = waiting_vms_.begin(); it != waiting_vms_.end();) {
      if (!waiting_vm_floor_.CoveredBy(room.max)) {
        // The dirty room shrank below every waiting need: the old VMs left
        // stay put; the fresh ones left may still fit elsewhere.
        walk_fresh(f);
        break;
      }
      const bool fresh = f != fresh_vms_.end() && *f == it->first;
      if (fresh) ++f;
      const Amounts need = it->second;
      auto next = std::next(it);
      if (fresh || room.max.Covers(need)) {
        try_place(vms_.find(it->first.second)->second, need, fresh, 0);
      }
      it = next;
    }
  }
  // VMs on draining workers migrate away when there is room. PlaceVm moves
  // a VM to an ONLINE worker, outside this worker's range of vms_by_worker_.
  for (const uint64_t node_id : draining_workers_) {
    const bool fresh = fresh_draining_.count(node_id) > 0;
    if (!fresh && room.workers.empty()) continue;
    auto it = vms_by_worker_.lower_bound(std::make_pair(node_id, std::string()));
    while (it != vms_by_worker_.end() && it->first.first == node_id) {
      cluster::VmRecord& vm = *it->second;
      ++it;
      try_place(vm, VmNeed(vm), fresh, node_id);
    }
  }
}

void ClusterStateMachine::ScanTasks(DirtyRoom& room) {
  // Tasks by (priority descending, submit index). A task that was pending at
  // the last scan fits on no worker that has not gained room since, so it is
  // tried on the dirty workers only; fresh tasks go through the full index.
  if (pending_.empty() || (fresh_.empty() && room.workers.empty())) return;
  // Places one pending task if it fits; true when placed.
  auto try_place = [&](const PendingKey& key, const Amounts& need,
                       bool fresh) {
    // An old task that needs more than any dirty worker has in some
    // dimension stays put, decided without touching its record.
    if (!fresh && !room.max.Covers(need)) return false;
    cluster::TaskRecord& task = tasks_.find(std::get<2>(key))->second;
    const uint64_t target =
        fresh ? index_.BestFit(
                    need, ToVector(task.spec().resources().required_features()))
              : BestFitOnDirty(room, need,
                               task.spec().resources().required_features(), 0);
    if (target == 0) return false;
    AssignTask(task, workers_.find(target)->second);
    room.Refresh(index_);
    return true;
  };
  if (room.workers.empty()) {
    // No worker gained room: only fresh tasks can move; walk those alone.
    for (auto it = fresh_.begin(); it != fresh_.end();) {
      auto pending = pending_.find(*it);
      CHECK(pending != pending_.end());
      if (try_place(*it, pending->second, /*fresh=*/true)) {
        need_floor_.Remove(pending->second);
        pending_.erase(pending);
        it = fresh_.erase(it);
      } else {
        ++it;
      }
    }
    return;
  }
  auto it = pending_.begin();
  while (it != pending_.end()) {
    if (!need_floor_.CoveredBy(room.max)) {
      // No pending task fits in the room left on the dirty workers, and
      // old tasks fit nowhere else: only fresh ones can still move.
      for (auto f = fresh_.lower_bound(it->first); f != fresh_.end();) {
        auto pending = pending_.find(*f);
        CHECK(pending != pending_.end());
        if (try_place(*f, pending->second, /*fresh=*/true)) {
          need_floor_.Remove(pending->second);
          pending_.erase(pending);
          f = fresh_.erase(f);
        } else {
          ++f;
        }
      }
      break;
    }
    const bool fresh = !fresh_.empty() && fresh_.count(it->first) > 0;
    if (try_place(it->first, it->second, fresh)) {
      if (fresh) fresh_.erase(it->first);
      need_floor_.Remove(it->second);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void ClusterStateMachine::PlaceVm(cluster::VmRecord& vm,
                                  cluster::WorkerRecord& w) {
  CHECK_EQ(w.status(), cluster::WORKER_ONLINE);
  CHECK_NE(vm.worker_id(), w.node_id());
  if (vm.worker_id() != 0) {
    CHECK_EQ(vms_by_worker_.erase({vm.worker_id(), vm.name()}), 1u);
    Release(vm.worker_id(), VmNeed(vm));
  } else {
    EraseWaitingVm(vm);
  }
  Reserve(w, VmNeed(vm));
  vm.set_worker_id(w.node_id());
  vm.set_generation(vm.generation() + 1);
  vm.set_observed(cluster::VM_OBSERVED_UNSPECIFIED);
  CHECK(vms_by_worker_.emplace(std::make_pair(w.node_id(), vm.name()), &vm).second);
}

void ClusterStateMachine::UnplaceVm(cluster::VmRecord& vm) {
  CHECK_NE(vm.worker_id(), 0u);
  CHECK_EQ(vms_by_worker_.erase({vm.worker_id(), vm.name()}), 1u);
  Release(vm.worker_id(), VmNeed(vm));
  vm.set_worker_id(0);
  vm.set_observed(cluster::VM_OBSERVED_UNSPECIFIED);
  AddWaitingVm(vm, /*fresh=*/true);
}

void ClusterStateMachine::AddWaitingVm(const cluster::VmRecord& vm,
                                       bool fresh) {
  CHECK_EQ(vm.worker_id(), 0u);
  const Amounts need = VmNeed(vm);
  CHECK(waiting_vms_.emplace(std::make_pair(vm.create_index(), vm.name()), need)
            .second);
  waiting_vm_floor_.Add(need);
  if (fresh) {
    fresh_vms_.emplace(vm.create_index(), vm.name());
    scan_needed_ = true;
  }
}

void ClusterStateMachine::EraseWaitingVm(const cluster::VmRecord& vm) {
  auto it = waiting_vms_.find(std::make_pair(vm.create_index(), vm.name()));
  CHECK(it != waiting_vms_.end()) << "vm " << vm.name() << " is not waiting";
  waiting_vm_floor_.Remove(it->second);
  if (!fresh_vms_.empty()) fresh_vms_.erase(it->first);
  waiting_vms_.erase(it);
}

// ---------------------------------------------------------------------------
// Tasks

ClusterStateMachine::Outcome ClusterStateMachine::DoSubmitTask(
    Index index, const cluster::SubmitTask& c) {
  std::string error = ValidateId(c.task_id(), "task_id", kTaskIdBytesMax);
  if (!error.empty()) return Invalid(std::move(error));
  cluster::TaskSpec spec;
  error = ValidateTaskSpec(c.spec(), spec);
  if (!error.empty()) {
    return Invalid(absl::StrCat("task '", c.task_id(), "': ", error));
  }
  // One lookup: the position also serves as the insertion hint below.
  auto it = tasks_.lower_bound(c.task_id());
  if (it != tasks_.end() && it->first == c.task_id()) {
    if (SameMessage(it->second.spec(), spec)) return OkTask(it->second);
    return Error(cluster::RESULT_ALREADY_EXISTS,
                 absl::StrCat("task '", c.task_id(),
                              "' already exists with a different spec"));
  }
  if (tasks_.size() >= options_.tasks_max) {
    return Error(
        cluster::RESULT_RESOURCE_EXHAUSTED,
        absl::StrCat("task table is full (", options_.tasks_max, " tasks)"));
  }
  if (pending_.size() + retry_timers_.size() >= options_.pending_tasks_max) {
    return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                 absl::StrCat("pending queue is full (",
                              options_.pending_tasks_max, " tasks)"));
  }
  cluster::TaskRecord& task =
      tasks_.emplace_hint(it, c.task_id(), cluster::TaskRecord{})->second;
  task.set_task_id(c.task_id());
  *task.mutable_spec() = std::move(spec);
  task.set_state(cluster::TASK_PENDING);
  task.set_submit_index(index.value());
  task.set_submit_time_ms(now_ms_);
  EnqueuePending(task, /*fresh=*/true);
  return OkTask(task);
}

ClusterStateMachine::Outcome ClusterStateMachine::DoTaskStarted(
    const cluster::TaskStarted& c) {
  auto it = tasks_.find(c.task_id());
  if (it == tasks_.end()) {
    return TaskNotFound(c.task_id());
  }
  cluster::TaskRecord& task = it->second;
  if (task.state() != cluster::TASK_ASSIGNED) {
    return Precondition(absl::StrCat("task '", c.task_id(), "' is ",
                                     sm::TaskStateName(task.state()),
                                     ", not ASSIGNED"));
  }
  if (task.worker_id() != c.worker_id()) {
    return Precondition(
        absl::StrCat("task '", c.task_id(), "' is assigned to worker ",
                     task.worker_id(), ", not ", c.worker_id()));
  }
  if (task.attempt() != c.attempt()) {
    return Precondition(absl::StrCat("task '", c.task_id(), "' attempt ",
                                     c.attempt(), " is stale: current is ",
                                     task.attempt()));
  }
  task.set_state(cluster::TASK_RUNNING);
  TrackDeadline(it->first, task);
  return OkTask(task);
}

ClusterStateMachine::Outcome ClusterStateMachine::DoTaskFinished(
    const cluster::TaskFinished& c) {
  auto it = tasks_.find(c.task_id());
  if (it == tasks_.end()) {
    return TaskNotFound(c.task_id());
  }
  cluster::TaskRecord& task = it->second;
  if (!IsPlacedState(task.state())) {
    return Precondition(absl::StrCat("task '", c.task_id(), "' is ",
                                     sm::TaskStateName(task.state()),
                                     ", not ASSIGNED or RUNNING"));
  }
  if (task.worker_id() != c.worker_id()) {
    return Precondition(
        absl::StrCat("task '", c.task_id(), "' is assigned to worker ",
                     task.worker_id(), ", not ", c.worker_id()));
  }
  if (task.attempt() != c.result().attempt()) {
    return Precondition(absl::StrCat("task '", c.task_id(), "' attempt ",
                                     c.result().attempt(),
                                     " is stale: current is ", task.attempt()));
  }
  std::string error = ValidateText(c.result().error(), "task result error");
  if (!error.empty()) return Invalid(std::move(error));
  cluster::TaskResult result = c.result();
  if (result.output_tail().size() > kTaskOutputTailBytesMax) {
    result.set_output_tail(result.output_tail().substr(
        result.output_tail().size() - kTaskOutputTailBytesMax));
  }
  TruncateUtf8Prefix(*result.mutable_error(), kTaskErrorBytesMax);

  UntrackDeadline(task);
  Release(task.worker_id(), TaskNeed(task));
  CHECK_EQ(tasks_by_worker_.erase({task.worker_id(), task.task_id()}), 1u);
  task.set_worker_id(0);
  *task.mutable_result() = std::move(result);
  if (task.result().success()) {
    FinishTask(it->first, task, cluster::TASK_SUCCEEDED);
  } else {
    task.set_failed_attempts(task.failed_attempts() + 1);
    if (task.failed_attempts() < task.spec().max_attempts()) {
      task.set_state(cluster::TASK_PENDING);
      task.set_not_before_ms(now_ms_ + BackoffMs(task.failed_attempts()));
      CHECK(
          retry_timers_.insert({task.not_before_ms(), task.task_id()}).second);
    } else {
      FinishTask(it->first, task,
                 task.result().timed_out() ? cluster::TASK_TIMED_OUT
                                           : cluster::TASK_FAILED);
    }
  }
  return OkTask(task);
}

ClusterStateMachine::Outcome ClusterStateMachine::DoCancelTask(
    const cluster::CancelTask& c) {
  auto it = tasks_.find(c.task_id());
  if (it == tasks_.end()) {
    return TaskNotFound(c.task_id());
  }
  cluster::TaskRecord& task = it->second;
  if (sm::IsTerminal(task.state())) {
    return Precondition(absl::StrCat("task '", c.task_id(), "' is already ",
                                     sm::TaskStateName(task.state())));
  }
  if (task.state() == cluster::TASK_PENDING) {
    DequeuePending(task);
  } else {
    UntrackDeadline(task);
    Release(task.worker_id(), TaskNeed(task));
    CHECK_EQ(tasks_by_worker_.erase({task.worker_id(), task.task_id()}), 1u);
    task.set_worker_id(0);
  }
  task.set_not_before_ms(0);
  FinishTask(it->first, task, cluster::TASK_CANCELLED);
  return OkTask(task);
}

// ---------------------------------------------------------------------------
// VMs

ClusterStateMachine::Outcome ClusterStateMachine::DoCreateVm(
    Index index, const cluster::CreateVm& c) {
  std::string error = ValidateId(c.name(), "vm name", kVmNameBytesMax);
  if (!error.empty()) return Invalid(std::move(error));
  cluster::VmSpec spec;
  error = ValidateVmSpec(c.spec(), spec);
  if (!error.empty())
    return Invalid(absl::StrCat("vm '", c.name(), "': ", error));
  auto it = vms_.lower_bound(c.name());  // also the insertion hint below
  if (it != vms_.end() && it->first == c.name()) {
    if (SameMessage(it->second.spec(), spec)) return OkVm(it->second);
    return Error(cluster::RESULT_ALREADY_EXISTS,
                 absl::StrCat("vm '", c.name(),
                              "' already exists with a different spec"));
  }
  if (vms_.size() >= options_.vms_max) {
    return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                 absl::StrCat("vm table is full (", options_.vms_max, " vms)"));
  }
  cluster::VmRecord& vm =
      vms_.emplace_hint(it, c.name(), cluster::VmRecord{})->second;
  vm.set_name(c.name());
  *vm.mutable_spec() = std::move(spec);
  vm.set_desired(cluster::VM_DESIRED_STOPPED);
  vm.set_create_index(index.value());
  AddWaitingVm(vm, /*fresh=*/true);
  return OkVm(vm);
}

ClusterStateMachine::Outcome ClusterStateMachine::DoSetVmDesired(
    absl::string_view name, cluster::VmDesiredState desired) {
  auto it = vms_.find(name);
  if (it == vms_.end()) {
    return VmNotFound(name);
  }
  cluster::VmRecord& vm = it->second;
  if (vm.desired() == desired) {
    return Precondition(absl::StrCat("vm '", name, "' is already desired ",
                                     sm::VmDesiredName(desired)));
  }
  vm.set_desired(desired);
  return OkVm(vm);
}

ClusterStateMachine::Outcome ClusterStateMachine::DoDeleteVm(
    const cluster::DeleteVm& c) {
  auto it = vms_.find(c.name());
  if (it == vms_.end()) {
    return VmNotFound(c.name());
  }
  cluster::VmRecord& vm = it->second;
  if (vm.worker_id() != 0) {
    CHECK_EQ(vms_by_worker_.erase({vm.worker_id(), vm.name()}), 1u);
    Release(vm.worker_id(), VmNeed(vm));
  } else {
    EraseWaitingVm(vm);
  }
  Outcome o;
  o.subject = Outcome::Subject::kLiteral;
  *o.literal.mutable_vm() = std::move(vm);
  vms_.erase(it);
  return o;
}

ClusterStateMachine::Outcome ClusterStateMachine::DoMigrateVm(
    const cluster::MigrateVm& c) {
  auto it = vms_.find(c.name());
  if (it == vms_.end()) {
    return VmNotFound(c.name());
  }
  cluster::VmRecord& vm = it->second;
  if (vm.worker_id() == 0) {
    return Precondition(absl::StrCat("vm '", c.name(),
                                     "' is not placed; it moves when placed"));
  }
  if (c.target_worker_id() == vm.worker_id()) {
    return Precondition(absl::StrCat(
        "vm '", c.name(), "' is already on worker ", vm.worker_id()));
  }
  uint64_t target = c.target_worker_id();
  if (target != 0) {
    auto w = workers_.find(target);
    if (w == workers_.end()) {
      return WorkerNotFound(target);
    }
    if (w->second.status() != cluster::WORKER_ONLINE) {
      return Precondition(absl::StrCat("worker ", target, " is ",
                                       sm::WorkerStatusName(w->second.status()),
                                       ", not ONLINE"));
    }
    if (!Includes(w->second.features(), vm.spec().features())) {
      return Precondition(absl::StrCat(
          "worker ", target, " lacks a feature vm '", c.name(), "' requires"));
    }
    if (!FreeOf(w->second).Covers(VmNeed(vm))) {
      return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                   absl::StrCat("worker ", target, " has no room for vm '",
                                c.name(), "'"));
    }
  } else {
    target = index_.BestFit(VmNeed(vm), ToVector(vm.spec().features()),
                            vm.worker_id());
    if (target == 0) {
      return Error(
          cluster::RESULT_RESOURCE_EXHAUSTED,
          absl::StrCat("no other ONLINE worker can take vm '", c.name(), "'"));
    }
  }
  PlaceVm(vm, workers_.find(target)->second);
  return OkVm(vm);
}

ClusterStateMachine::Outcome ClusterStateMachine::DoVmObserved(
    const cluster::VmObserved& c) {
  auto it = vms_.find(c.name());
  if (it == vms_.end()) {
    return VmNotFound(c.name());
  }
  if (c.state() < cluster::VM_CREATING || c.state() > cluster::VM_FAILED) {
    return Invalid(absl::StrCat("vm observed state ",
                                static_cast<int>(c.state()), " is not valid"));
  }
  cluster::VmRecord& vm = it->second;
  if (vm.worker_id() == 0 || vm.worker_id() != c.worker_id()) {
    return Precondition(absl::StrCat("vm '", c.name(), "' is placed on worker ",
                                     vm.worker_id(), ", not ", c.worker_id()));
  }
  if (vm.generation() != c.generation()) {
    return Precondition(absl::StrCat("vm '", c.name(), "' generation ",
                                     c.generation(), " is stale: current is ",
                                     vm.generation()));
  }
  if (!sm::IsLegalVmObservedTransition(vm.observed(), c.state())) {
    return Precondition(absl::StrCat(
        "illegal vm observed transition ", sm::VmObservedName(vm.observed()),
        " -> ", sm::VmObservedName(c.state()), " for vm '", c.name(), "'"));
  }
  vm.set_observed(c.state());
  return OkVm(vm);
}

// ---------------------------------------------------------------------------
// KV

ClusterStateMachine::Outcome ClusterStateMachine::DoKvPut(
    Index index, const cluster::KvPut& c) {
  std::string error = ValidateKey(c.key());
  if (!error.empty()) return Invalid(std::move(error));
  if (c.value().size() > kKvValueBytesMax) {
    return Invalid(absl::StrCat("kv value of ", c.value().size(),
                                " bytes exceeds ", kKvValueBytesMax));
  }
  auto it = kv_.lower_bound(c.key());  // also the insertion hint below
  if (it == kv_.end() || it->first != c.key()) {
    if (kv_.size() >= options_.kv_keys_max) {
      return Error(
          cluster::RESULT_RESOURCE_EXHAUSTED,
          absl::StrCat("kv table is full (", options_.kv_keys_max, " keys)"));
    }
    it = kv_.emplace_hint(it, c.key(), cluster::KvEntry{});
    it->second.set_key(c.key());
    it->second.set_create_index(index.value());
  }
  it->second.set_value(c.value());
  it->second.set_mod_index(index.value());
  Outcome o;
  o.subject = Outcome::Subject::kLiteral;
  *o.literal.mutable_kv() = it->second;
  return o;
}

ClusterStateMachine::Outcome ClusterStateMachine::DoMemberJoined(
    Index index, const cluster::MemberJoined& c) {
  if (c.node_id() == 0 || c.store_nonce() == 0) {
    return Invalid("member_joined needs a node_id and a store_nonce, both non-zero");
  }
  auto it = members_.find(c.node_id());
  if (it != members_.end() && it->second.store_nonce() != 0) {
    if (it->second.store_nonce() == c.store_nonce()) return Outcome{};  // a retry
    return Precondition(absl::StrCat(
        "member ", c.node_id(), " joined at index ", it->second.joined_index(),
        " with another store: a node id never joins twice (its old store is gone)"));
  }
  if (it == members_.end() && members_.size() >= kMembersMax) {
    return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                 absl::StrCat("member table is full (", kMembersMax, " members)"));
  }
  cluster::MemberRecord& record = members_[c.node_id()];
  record.set_node_id(c.node_id());
  record.set_store_nonce(c.store_nonce());
  record.set_joined_index(index.value());
  return Outcome{};
}

ClusterStateMachine::Outcome ClusterStateMachine::DoMemberAttributes(
    const cluster::MemberAttributes& c) {
  std::string error =
      ValidateId(c.peer_address(), "member_attributes: peer_address", kAddressBytesMax);
  if (error.empty()) {
    error = ValidateId(c.client_address(), "member_attributes: client_address",
                       kAddressBytesMax);
  }
  if (!error.empty()) return Invalid(std::move(error));
  auto it = members_.find(c.node_id());
  if (it == members_.end()) {
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("node ", c.node_id(), " is not a member"));
  }
  if (it->second.role() == cluster::MEMBER_ROLE_REMOVED) {
    return Precondition(absl::StrCat("member ", c.node_id(), " was removed at index ",
                                     it->second.changed_index()));
  }
  it->second.set_peer_address(c.peer_address());
  it->second.set_client_address(c.client_address());
  Outcome o;
  o.subject = Outcome::Subject::kLiteral;
  *o.literal.mutable_member() = it->second;
  return o;
}

cluster::Result ClusterStateMachine::ApplyMembership(Index index,
                                                     const cluster::MembershipChange& change) {
  CHECK_GT(index, applied_index_) << "entries must be applied in log order";
  applied_index_ = index;
  // The configuration is the Raft core's, already in force: every record
  // follows it, whatever the request said. Only a full table is refused
  // (a node then has no record; nothing else depends on it).
  auto role_of = [&change](uint64_t id) {
    if (std::binary_search(change.voters().begin(), change.voters().end(), id)) {
      return cluster::MEMBER_ROLE_VOTER;
    }
    if (std::binary_search(change.learners().begin(), change.learners().end(), id)) {
      return cluster::MEMBER_ROLE_LEARNER;
    }
    return cluster::MEMBER_ROLE_REMOVED;
  };
  Result result;
  auto set_role = [&](uint64_t id) {
    auto it = members_.find(id);
    if (it == members_.end()) {
      if (id == 0) return;
      if (members_.size() >= kMembersMax) {
        result.set_code(cluster::RESULT_RESOURCE_EXHAUSTED);
        result.set_message(absl::StrCat("member table is full (", kMembersMax,
                                        " members): node ", id, " has no record"));
        return;
      }
      it = members_.emplace(id, cluster::MemberRecord()).first;
      it->second.set_node_id(id);
    }
    const cluster::MemberRole role = role_of(id);
    if (it->second.role() != role) {
      it->second.set_role(role);
      it->second.set_changed_index(index.value());
    }
  };
  for (uint64_t id : change.voters()) set_role(id);
  for (uint64_t id : change.learners()) set_role(id);
  for (auto& [id, record] : members_) {
    // Records from before roles were kept (UNSPECIFIED) change only when
    // the configuration names them.
    if (record.role() != cluster::MEMBER_ROLE_REMOVED &&
        record.role() != cluster::MEMBER_ROLE_UNSPECIFIED && record.role() != role_of(id)) {
      set_role(id);
    }
  }
  const uint64_t subject = change.subject_node_id();
  if (subject != 0) {
    set_role(subject);  // a removed subject keeps its record
    auto it = members_.find(subject);
    if (it != members_.end()) {
      const std::string& address = change.subject_peer_address();
      if (!address.empty() && address.size() <= kAddressBytesMax &&
          ValidateText(address, "peer address").empty()) {
        it->second.set_peer_address(address);
      }
      if (result.code() == cluster::RESULT_OK) *result.mutable_member() = it->second;
    }
  }
  const uint64_t client_id = change.request_id().client_id();
  const uint64_t sequence = change.request_id().sequence();
  if (client_id != 0 && sequence != 0) {
    auto session = sessions_.find(client_id);
    if (session == sessions_.end() || session->second.last_sequence() < sequence) {
      RecordSession(client_id, sequence, index, result);
    }
  }
  return result;
}

const cluster::MemberRecord* ClusterStateMachine::FindMember(uint64_t node_id) const {
  auto it = members_.find(node_id);
  return it == members_.end() ? nullptr : &it->second;
}

ClusterStateMachine::Outcome ClusterStateMachine::DoKvDelete(
    const cluster::KvDelete& c) {
  std::string error = ValidateKey(c.key());
  if (!error.empty()) return Invalid(std::move(error));
  auto it = kv_.find(c.key());
  if (it == kv_.end()) {
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("kv key '", c.key(), "' does not exist"));
  }
  Outcome o;
  o.subject = Outcome::Subject::kLiteral;
  *o.literal.mutable_kv() = std::move(it->second);
  kv_.erase(it);
  return o;
}

ClusterStateMachine::Outcome ClusterStateMachine::DoKvCompareAndSwap(
    Index index, const cluster::KvCompareAndSwap& c) {
  std::string error = ValidateKey(c.key());
  if (!error.empty()) return Invalid(std::move(error));
  if (c.value().size() > kKvValueBytesMax) {
    return Invalid(absl::StrCat("kv value of ", c.value().size(),
                                " bytes exceeds ", kKvValueBytesMax));
  }
  auto it = kv_.find(c.key());
  const uint64_t current = it == kv_.end() ? 0 : it->second.mod_index();
  if (current != c.expected_version()) {
    Outcome o = Precondition(absl::StrCat(
        "compare-and-swap on kv key '", c.key(), "': expected version ",
        c.expected_version(), ", found ", current));
    if (it != kv_.end()) {
      o.subject = Outcome::Subject::kLiteral;
      *o.literal.mutable_kv() = it->second;
    }
    return o;
  }
  cluster::KvPut put;
  put.set_key(c.key());
  put.set_value(c.value());
  return DoKvPut(index, put);
}

}  // namespace blixard
