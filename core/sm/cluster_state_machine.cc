#include "core/sm/cluster_state_machine.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/rng.h"
#include "core/sm/transitions.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"

namespace blixard {

using cluster::Result;
using cluster::ResultCode;
using sm::Amounts;

// What a command did: a code and message, and which record the reply shows
// (filled after the placement scan, so a reply shows the task as placed).
struct ClusterStateMachine::Outcome {
  enum class Subject { kNone, kWorker, kTask, kVm, kLiteral };
  ResultCode code = cluster::RESULT_OK;
  std::string message;
  Subject subject = Subject::kNone;
  uint64_t worker_id = 0;
  std::string key;
  Result literal;  // kLiteral: a payload that no longer lives in the state
};

namespace {

using Outcome = ClusterStateMachine::Outcome;  // NOLINT: private, used below

// The maximum number of dirty workers the scan tries one by one for a pending
// task that was already known not to fit elsewhere; above it, the full index.
constexpr size_t kDirtyScanMax = 16;

template <typename RangeA, typename RangeB>
bool Includes(const RangeA& have, const RangeB& need) {
  return std::includes(have.begin(), have.end(), need.begin(), need.end());
}

std::vector<std::string> ToVector(
    const google::protobuf::RepeatedPtrField<std::string>& features) {
  return std::vector<std::string>(features.begin(), features.end());
}

Amounts ToAmounts(const cluster::Resources& r) {
  return Amounts{r.cpu_cores(), r.memory_mb(), r.disk_gb()};
}
Amounts TaskNeed(const cluster::TaskRecord& task) {
  const cluster::TaskResources& r = task.spec().resources();
  return Amounts{r.cpu_cores(), r.memory_mb(), r.disk_gb()};
}
Amounts VmNeed(const cluster::VmRecord& vm) {
  return Amounts{vm.spec().vcpus(), vm.spec().memory_mb(), vm.spec().disk_gb()};
}
Amounts FreeOf(const cluster::WorkerRecord& worker) {
  const Amounts cap = ToAmounts(worker.capacity());
  const Amounts used = ToAmounts(worker.reserved());
  CHECK(cap.Covers(used)) << "worker " << worker.node_id() << " over-committed";
  return Amounts{cap.cpu_cores - used.cpu_cores, cap.memory_mb - used.memory_mb,
                 cap.disk_gb - used.disk_gb};
}
void SetResources(cluster::Resources& r, const Amounts& a) {
  r.set_cpu_cores(a.cpu_cores);
  r.set_memory_mb(a.memory_mb);
  r.set_disk_gb(a.disk_gb);
}
bool IsPlacedState(cluster::TaskState state) {
  return state == cluster::TASK_ASSIGNED || state == cluster::TASK_RUNNING;
}

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
Outcome OkWorker(uint64_t node_id) {
  Outcome o;
  o.subject = Outcome::Subject::kWorker;
  o.worker_id = node_id;
  return o;
}
Outcome OkTask(const std::string& id) {
  Outcome o;
  o.subject = Outcome::Subject::kTask;
  o.key = id;
  return o;
}
Outcome OkVm(const std::string& name) {
  Outcome o;
  o.subject = Outcome::Subject::kVm;
  o.key = name;
  return o;
}

bool ValidWorkerStatus(int status) {
  return status >= cluster::WORKER_ONLINE && status <= cluster::WORKER_FAILED;
}

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, at
// most U+10FFFF). Proto3 `string` fields must be, or a snapshot holding them
// would not parse again; commands built in memory (fuzzers) may not be.
bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > text.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string ValidateText(absl::string_view text, absl::string_view what) {
  if (!IsValidUtf8(text)) return absl::StrCat(what, " is not valid UTF-8");
  return "";
}

// Validates a feature list; on success writes it sorted and unique.
std::string ValidateFeatures(
    const google::protobuf::RepeatedPtrField<std::string>& features,
    absl::string_view what, std::vector<std::string>& normalized) {
  if (static_cast<size_t>(features.size()) > kWorkerFeaturesMax) {
    return absl::StrCat(what, ": ", features.size(), " features, more than ",
                        kWorkerFeaturesMax);
  }
  normalized.assign(features.begin(), features.end());
  for (const std::string& f : normalized) {
    if (f.empty() || f.size() > kFeatureBytesMax) {
      return absl::StrCat(what, ": feature of ", f.size(),
                          " bytes; features must have 1 to ", kFeatureBytesMax,
                          " bytes");
    }
    if (!IsValidUtf8(f)) return absl::StrCat(what, ": feature is not valid UTF-8");
  }
  std::sort(normalized.begin(), normalized.end());
  normalized.erase(std::unique(normalized.begin(), normalized.end()),
                   normalized.end());
  return "";
}

std::string ValidateAmounts(const Amounts& a, absl::string_view what) {
  if (a.cpu_cores > kWorkerCpuCoresMax) {
    return absl::StrCat(what, ": cpu_cores ", a.cpu_cores, " exceeds ",
                        kWorkerCpuCoresMax);
  }
  if (a.memory_mb > kWorkerMemoryMbMax) {
    return absl::StrCat(what, ": memory_mb ", a.memory_mb, " exceeds ",
                        kWorkerMemoryMbMax);
  }
  if (a.disk_gb > kWorkerDiskGbMax) {
    return absl::StrCat(what, ": disk_gb ", a.disk_gb, " exceeds ",
                        kWorkerDiskGbMax);
  }
  if (a.cpu_cores == 0 && a.memory_mb == 0 && a.disk_gb == 0) {
    return absl::StrCat(what, ": cpu_cores, memory_mb and disk_gb are all 0");
  }
  return "";
}

std::string ValidateId(absl::string_view id, absl::string_view what,
                       size_t max_bytes) {
  if (id.empty() || id.size() > max_bytes) {
    return absl::StrCat(what, " must have 1 to ", max_bytes, " bytes, has ",
                        id.size());
  }
  return ValidateText(id, what);
}

// Validates a task spec; on success writes the normalized spec (sorted
// required features) to `out`.
std::string ValidateTaskSpec(const cluster::TaskSpec& spec,
                             cluster::TaskSpec& out) {
  if (spec.command().empty() || spec.command().size() > kTaskCommandBytesMax) {
    return absl::StrCat("task command must have 1 to ", kTaskCommandBytesMax,
                        " bytes, has ", spec.command().size());
  }
  if (static_cast<size_t>(spec.args_size()) > kTaskArgsMax) {
    return absl::StrCat("task has ", spec.args_size(), " args, more than ",
                        kTaskArgsMax);
  }
  if (!IsValidUtf8(spec.command())) return "task command is not valid UTF-8";
  for (const std::string& arg : spec.args()) {
    if (arg.size() > kTaskArgBytesMax) {
      return absl::StrCat("task arg of ", arg.size(), " bytes exceeds ",
                          kTaskArgBytesMax);
    }
    if (!IsValidUtf8(arg)) return "task arg is not valid UTF-8";
  }
  const cluster::TaskResources& r = spec.resources();
  std::string error = ValidateAmounts(
      Amounts{r.cpu_cores(), r.memory_mb(), r.disk_gb()}, "task resources");
  if (!error.empty()) return error;
  std::vector<std::string> features;
  error = ValidateFeatures(r.required_features(), "task required_features",
                           features);
  if (!error.empty()) return error;
  if (spec.timeout_secs() > kTaskTimeoutSecsMax) {
    return absl::StrCat("task timeout_secs ", spec.timeout_secs(),
                        " exceeds ", kTaskTimeoutSecsMax);
  }
  if (spec.max_attempts() < 1 || spec.max_attempts() > kTaskMaxAttemptsMax) {
    return absl::StrCat("task max_attempts ", spec.max_attempts(),
                        " must be 1 to ", kTaskMaxAttemptsMax);
  }
  if (spec.priority() > kTaskPriorityMax) {
    return absl::StrCat("task priority ", spec.priority(), " exceeds ",
                        kTaskPriorityMax);
  }
  out = spec;
  out.mutable_resources()->clear_required_features();
  for (std::string& f : features) {
    out.mutable_resources()->add_required_features(std::move(f));
  }
  return "";
}

std::string ValidateVmSpec(const cluster::VmSpec& spec, cluster::VmSpec& out) {
  std::string error = ValidateAmounts(
      Amounts{spec.vcpus(), spec.memory_mb(), spec.disk_gb()}, "vm spec");
  if (!error.empty()) return error;
  error = ValidateId(spec.image(), "vm image", kVmImageBytesMax);
  if (!error.empty()) return error;
  std::vector<std::string> features;
  error = ValidateFeatures(spec.features(), "vm features", features);
  if (!error.empty()) return error;
  out = spec;
  out.clear_features();
  for (std::string& f : features) out.add_features(std::move(f));
  return "";
}

std::string ValidateKey(absl::string_view key) {
  return ValidateId(key, "kv key", kKvKeyBytesMax);
}

// Keeps at most `max_bytes` of `text`, cut on a UTF-8 character boundary
// (proto3 strings must stay valid UTF-8 for the snapshot to parse).
void TruncateUtf8Prefix(std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  text.resize(cut);
}

bool SameMessage(const google::protobuf::Message& a,
                 const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
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
    return absl::InvalidArgumentError(
        absl::StrCat("retry_backoff_max_ms ", retry_backoff_max_ms,
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
  CHECK_GT(index, applied_index_) << "entries must be applied in log order";
  applied_index_ = index;
  now_ms_ = std::max(now_ms_, command.log_time_ms());
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
        result.set_message(absl::StrCat("request ", sequence, " of client ",
                                        client_id,
                                        " is stale: the last one applied is ",
                                        last));
        return result;
      }
    }
  }

  const Outcome outcome = Dispatch(index, command);
  if (scan_needed_) Scan();
  result.set_code(outcome.code);
  result.set_message(outcome.message);
  FillPayload(outcome, result);
  if (client_id != 0) RecordSession(client_id, sequence, index, result);
  DCHECK(fresh_.empty() && dirty_workers_.empty() && !scan_needed_);
  return result;
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
    case cluster::Command::OP_NOT_SET:
      break;
  }
  return Invalid("command has no operation");
}

void ClusterStateMachine::FillPayload(const Outcome& outcome,
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
      if (const auto* t = FindTask(outcome.key)) *result.mutable_task() = *t;
      return;
    case Outcome::Subject::kVm:
      if (const auto* v = FindVm(outcome.key)) *result.mutable_vm() = *v;
      return;
    case Outcome::Subject::kLiteral:
      switch (outcome.literal.value_case()) {
        case Result::kWorker:
          *result.mutable_worker() = outcome.literal.worker();
          break;
        case Result::kTask:
          *result.mutable_task() = outcome.literal.task();
          break;
        case Result::kVm:
          *result.mutable_vm() = outcome.literal.vm();
          break;
        case Result::kKv:
          *result.mutable_kv() = outcome.literal.kv();
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
  if (c.node_id() == 0) return Invalid("register_worker: node_id must be non-zero");
  std::string error = ValidateId(c.address(), "register_worker: address",
                                 kAddressBytesMax);
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
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("worker ", node_id, " is not registered"));
  }
  cluster::WorkerRecord& w = it->second;
  const cluster::WorkerStatus from = w.status();
  if (!sm::IsLegalWorkerTransition(from, to)) {
    return Precondition(absl::StrCat(
        "illegal worker status transition ", sm::WorkerStatusName(from),
        " -> ", sm::WorkerStatusName(to), " for worker ", node_id));
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
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("worker ", c.node_id(), " is not registered"));
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
  auto lo = tasks_by_worker_.lower_bound(std::make_pair(node_id, std::string()));
  std::vector<std::string> task_ids;
  for (auto it = lo; it != tasks_by_worker_.end() && it->first == node_id; ++it) {
    task_ids.push_back(it->second);
  }
  for (const std::string& id : task_ids) RequeueTask(tasks_.find(id)->second);
  if (!vms_too) return;
  auto vlo = vms_by_worker_.lower_bound(std::make_pair(node_id, std::string()));
  std::vector<std::string> names;
  for (auto it = vlo; it != vms_by_worker_.end() && it->first == node_id; ++it) {
    names.push_back(it->second);
  }
  for (const std::string& name : names) UnplaceVm(vms_.find(name)->second);
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
  CHECK(ToAmounts(r).Covers(a)) << "release exceeds reservation on worker "
                                << worker_id;
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
  CHECK(tasks_by_worker_.insert({w.node_id(), task.task_id()}).second);
}

void ClusterStateMachine::RequeueTask(cluster::TaskRecord& task) {
  CHECK(IsPlacedState(task.state()));
  Release(task.worker_id(), TaskNeed(task));
  CHECK_EQ(tasks_by_worker_.erase({task.worker_id(), task.task_id()}), 1u);
  task.set_state(cluster::TASK_PENDING);
  task.set_worker_id(0);
  task.set_not_before_ms(0);
  EnqueuePending(task, /*fresh=*/true);
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
  while (!offline_timers_.empty() && offline_timers_.begin()->first <= now_ms_) {
    const uint64_t node_id = offline_timers_.begin()->second;
    offline_timers_.erase(offline_timers_.begin());
    CHECK_EQ(workers_.find(node_id)->second.status(), cluster::WORKER_OFFLINE);
    // The grace period is over: its tasks run elsewhere. VMs keep their
    // placement (and reservation) until the worker fails or is removed.
    RequeueWorkerWork(node_id, /*vms_too=*/false);
  }
}

void ClusterStateMachine::Scan() {
  scan_needed_ = false;
  if (index_.empty()) {
    fresh_.clear();
    dirty_workers_.clear();
    return;
  }
  // VMs waiting for a first (or new) placement, by create index.
  if (!waiting_vms_.empty()) {
    const std::vector<std::pair<uint64_t, std::string>> waiting(
        waiting_vms_.begin(), waiting_vms_.end());
    for (const auto& [create_index, name] : waiting) {
      TryPlaceVm(vms_.find(name)->second, 0);
    }
  }
  // VMs on draining workers migrate away when there is room.
  for (const uint64_t node_id : draining_workers_) {
    auto lo = vms_by_worker_.lower_bound(std::make_pair(node_id, std::string()));
    std::vector<std::string> names;
    for (auto it = lo; it != vms_by_worker_.end() && it->first == node_id; ++it) {
      names.push_back(it->second);
    }
    for (const std::string& name : names) {
      TryPlaceVm(vms_.find(name)->second, node_id);
    }
  }
  // Tasks by (priority descending, submit index). A task that was pending at
  // the last scan fits on no worker that has not gained room since, so it is
  // tried on the dirty workers only; fresh tasks go through the full index.
  if (!pending_.empty() && (!fresh_.empty() || !dirty_workers_.empty())) {
    std::vector<uint64_t> dirty;
    for (const uint64_t id : dirty_workers_) {
      if (index_.Contains(id)) dirty.push_back(id);
    }
    // Per-dimension maximum free room on the dirty workers, kept current as
    // the scan places work on them.
    Amounts dirty_max;
    auto refresh_dirty_max = [&]() {
      dirty_max = Amounts{};
      for (const uint64_t id : dirty) {
        const Amounts free = index_.Free(id);
        dirty_max.cpu_cores = std::max(dirty_max.cpu_cores, free.cpu_cores);
        dirty_max.memory_mb = std::max(dirty_max.memory_mb, free.memory_mb);
        dirty_max.disk_gb = std::max(dirty_max.disk_gb, free.disk_gb);
      }
    };
    refresh_dirty_max();
    const bool dirty_small = dirty.size() <= kDirtyScanMax;
    // Places one pending task if it fits; true when placed.
    auto try_place = [&](const PendingKey& key, const Amounts& need,
                         bool fresh) {
      // An old task that needs more than any dirty worker has in some
      // dimension stays put, decided without touching its record.
      if (!fresh && !dirty_max.Covers(need)) return false;
      cluster::TaskRecord& task = tasks_.find(std::get<2>(key))->second;
      uint64_t target = 0;
      if (fresh || !dirty_small) {
        target = index_.BestFit(
            need, ToVector(task.spec().resources().required_features()));
      } else {
        uint64_t best_score = 0;
        for (const uint64_t id : dirty) {
          const Amounts free = index_.Free(id);
          if (!free.Covers(need)) continue;
          if (!Includes(workers_.find(id)->second.features(),
                        task.spec().resources().required_features())) {
            continue;
          }
          const uint64_t score = sm::WeightedSize(free);  // same order as leftover
          if (target == 0 || score < best_score ||
              (score == best_score && id < target)) {
            target = id;
            best_score = score;
          }
        }
      }
      if (target == 0) return false;
      AssignTask(task, workers_.find(target)->second);
      refresh_dirty_max();
      return true;
    };
    if (dirty.empty()) {
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
    } else {
      auto it = pending_.begin();
      while (it != pending_.end()) {
        if (!need_floor_.CoveredBy(dirty_max)) {
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
  }
  fresh_.clear();
  dirty_workers_.clear();
  scan_needed_ = false;  // releases inside the scan cannot happen
}

bool ClusterStateMachine::TryPlaceVm(cluster::VmRecord& vm, uint64_t exclude) {
  const uint64_t target =
      index_.BestFit(VmNeed(vm), ToVector(vm.spec().features()), exclude);
  if (target == 0) return false;
  PlaceVm(vm, workers_.find(target)->second);
  return true;
}

void ClusterStateMachine::PlaceVm(cluster::VmRecord& vm,
                                  cluster::WorkerRecord& w) {
  CHECK_EQ(w.status(), cluster::WORKER_ONLINE);
  CHECK_NE(vm.worker_id(), w.node_id());
  if (vm.worker_id() != 0) {
    CHECK_EQ(vms_by_worker_.erase({vm.worker_id(), vm.name()}), 1u);
    Release(vm.worker_id(), VmNeed(vm));
  } else {
    CHECK_EQ(waiting_vms_.erase({vm.create_index(), vm.name()}), 1u);
  }
  Reserve(w, VmNeed(vm));
  vm.set_worker_id(w.node_id());
  vm.set_generation(vm.generation() + 1);
  vm.set_observed(cluster::VM_OBSERVED_UNSPECIFIED);
  CHECK(vms_by_worker_.insert({w.node_id(), vm.name()}).second);
}

void ClusterStateMachine::UnplaceVm(cluster::VmRecord& vm) {
  CHECK_NE(vm.worker_id(), 0u);
  CHECK_EQ(vms_by_worker_.erase({vm.worker_id(), vm.name()}), 1u);
  Release(vm.worker_id(), VmNeed(vm));
  vm.set_worker_id(0);
  vm.set_observed(cluster::VM_OBSERVED_UNSPECIFIED);
  CHECK(waiting_vms_.insert({vm.create_index(), vm.name()}).second);
  scan_needed_ = true;
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
  auto it = tasks_.find(c.task_id());
  if (it != tasks_.end()) {
    if (SameMessage(it->second.spec(), spec)) return OkTask(c.task_id());
    return Error(cluster::RESULT_ALREADY_EXISTS,
                 absl::StrCat("task '", c.task_id(),
                              "' already exists with a different spec"));
  }
  if (tasks_.size() >= options_.tasks_max) {
    return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                 absl::StrCat("task table is full (", options_.tasks_max,
                              " tasks)"));
  }
  if (pending_.size() + retry_timers_.size() >= options_.pending_tasks_max) {
    return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                 absl::StrCat("pending queue is full (",
                              options_.pending_tasks_max, " tasks)"));
  }
  cluster::TaskRecord& task = tasks_[c.task_id()];
  task.set_task_id(c.task_id());
  *task.mutable_spec() = std::move(spec);
  task.set_state(cluster::TASK_PENDING);
  task.set_submit_index(index.value());
  task.set_submit_time_ms(now_ms_);
  EnqueuePending(task, /*fresh=*/true);
  return OkTask(c.task_id());
}

ClusterStateMachine::Outcome ClusterStateMachine::DoTaskStarted(
    const cluster::TaskStarted& c) {
  auto it = tasks_.find(c.task_id());
  if (it == tasks_.end()) {
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("task '", c.task_id(), "' does not exist"));
  }
  cluster::TaskRecord& task = it->second;
  if (task.state() != cluster::TASK_ASSIGNED) {
    return Precondition(absl::StrCat("task '", c.task_id(), "' is ",
                                     sm::TaskStateName(task.state()),
                                     ", not ASSIGNED"));
  }
  if (task.worker_id() != c.worker_id()) {
    return Precondition(absl::StrCat("task '", c.task_id(),
                                     "' is assigned to worker ",
                                     task.worker_id(), ", not ", c.worker_id()));
  }
  if (task.attempt() != c.attempt()) {
    return Precondition(absl::StrCat("task '", c.task_id(), "' attempt ",
                                     c.attempt(), " is stale: current is ",
                                     task.attempt()));
  }
  task.set_state(cluster::TASK_RUNNING);
  return OkTask(c.task_id());
}

ClusterStateMachine::Outcome ClusterStateMachine::DoTaskFinished(
    const cluster::TaskFinished& c) {
  auto it = tasks_.find(c.task_id());
  if (it == tasks_.end()) {
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("task '", c.task_id(), "' does not exist"));
  }
  cluster::TaskRecord& task = it->second;
  if (!IsPlacedState(task.state())) {
    return Precondition(absl::StrCat("task '", c.task_id(), "' is ",
                                     sm::TaskStateName(task.state()),
                                     ", not ASSIGNED or RUNNING"));
  }
  if (task.worker_id() != c.worker_id()) {
    return Precondition(absl::StrCat("task '", c.task_id(),
                                     "' is assigned to worker ",
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

  Release(task.worker_id(), TaskNeed(task));
  CHECK_EQ(tasks_by_worker_.erase({task.worker_id(), task.task_id()}), 1u);
  task.set_worker_id(0);
  *task.mutable_result() = std::move(result);
  if (task.result().success()) {
    task.set_state(cluster::TASK_SUCCEEDED);
    task.set_finished_time_ms(now_ms_);
  } else {
    task.set_failed_attempts(task.failed_attempts() + 1);
    if (task.failed_attempts() < task.spec().max_attempts()) {
      task.set_state(cluster::TASK_PENDING);
      task.set_not_before_ms(now_ms_ + BackoffMs(task.failed_attempts()));
      CHECK(retry_timers_.insert({task.not_before_ms(), task.task_id()}).second);
    } else {
      task.set_state(task.result().timed_out() ? cluster::TASK_TIMED_OUT
                                               : cluster::TASK_FAILED);
      task.set_finished_time_ms(now_ms_);
    }
  }
  return OkTask(c.task_id());
}

ClusterStateMachine::Outcome ClusterStateMachine::DoCancelTask(
    const cluster::CancelTask& c) {
  auto it = tasks_.find(c.task_id());
  if (it == tasks_.end()) {
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("task '", c.task_id(), "' does not exist"));
  }
  cluster::TaskRecord& task = it->second;
  if (sm::IsTerminal(task.state())) {
    return Precondition(absl::StrCat("task '", c.task_id(), "' is already ",
                                     sm::TaskStateName(task.state())));
  }
  if (task.state() == cluster::TASK_PENDING) {
    DequeuePending(task);
  } else {
    Release(task.worker_id(), TaskNeed(task));
    CHECK_EQ(tasks_by_worker_.erase({task.worker_id(), task.task_id()}), 1u);
    task.set_worker_id(0);
  }
  task.set_state(cluster::TASK_CANCELLED);
  task.set_not_before_ms(0);
  task.set_finished_time_ms(now_ms_);
  return OkTask(c.task_id());
}

// ---------------------------------------------------------------------------
// VMs

ClusterStateMachine::Outcome ClusterStateMachine::DoCreateVm(
    Index index, const cluster::CreateVm& c) {
  std::string error = ValidateId(c.name(), "vm name", kVmNameBytesMax);
  if (!error.empty()) return Invalid(std::move(error));
  cluster::VmSpec spec;
  error = ValidateVmSpec(c.spec(), spec);
  if (!error.empty()) return Invalid(absl::StrCat("vm '", c.name(), "': ", error));
  auto it = vms_.find(c.name());
  if (it != vms_.end()) {
    if (SameMessage(it->second.spec(), spec)) return OkVm(c.name());
    return Error(cluster::RESULT_ALREADY_EXISTS,
                 absl::StrCat("vm '", c.name(),
                              "' already exists with a different spec"));
  }
  if (vms_.size() >= options_.vms_max) {
    return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                 absl::StrCat("vm table is full (", options_.vms_max, " vms)"));
  }
  cluster::VmRecord& vm = vms_[c.name()];
  vm.set_name(c.name());
  *vm.mutable_spec() = std::move(spec);
  vm.set_desired(cluster::VM_DESIRED_STOPPED);
  vm.set_create_index(index.value());
  CHECK(waiting_vms_.insert({vm.create_index(), vm.name()}).second);
  scan_needed_ = true;
  return OkVm(c.name());
}

ClusterStateMachine::Outcome ClusterStateMachine::DoSetVmDesired(
    absl::string_view name, cluster::VmDesiredState desired) {
  auto it = vms_.find(name);
  if (it == vms_.end()) {
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("vm '", name, "' does not exist"));
  }
  cluster::VmRecord& vm = it->second;
  if (vm.desired() == desired) {
    return Precondition(absl::StrCat("vm '", name, "' is already desired ",
                                     sm::VmDesiredName(desired)));
  }
  vm.set_desired(desired);
  return OkVm(vm.name());
}

ClusterStateMachine::Outcome ClusterStateMachine::DoDeleteVm(
    const cluster::DeleteVm& c) {
  auto it = vms_.find(c.name());
  if (it == vms_.end()) {
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("vm '", c.name(), "' does not exist"));
  }
  cluster::VmRecord& vm = it->second;
  if (vm.worker_id() != 0) {
    CHECK_EQ(vms_by_worker_.erase({vm.worker_id(), vm.name()}), 1u);
    Release(vm.worker_id(), VmNeed(vm));
  } else {
    CHECK_EQ(waiting_vms_.erase({vm.create_index(), vm.name()}), 1u);
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
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("vm '", c.name(), "' does not exist"));
  }
  cluster::VmRecord& vm = it->second;
  if (vm.worker_id() == 0) {
    return Precondition(absl::StrCat("vm '", c.name(),
                                     "' is not placed; it moves when placed"));
  }
  if (c.target_worker_id() == vm.worker_id()) {
    return Precondition(absl::StrCat("vm '", c.name(), "' is already on worker ",
                                     vm.worker_id()));
  }
  uint64_t target = c.target_worker_id();
  if (target != 0) {
    auto w = workers_.find(target);
    if (w == workers_.end()) {
      return Error(cluster::RESULT_NOT_FOUND,
                   absl::StrCat("worker ", target, " is not registered"));
    }
    if (w->second.status() != cluster::WORKER_ONLINE) {
      return Precondition(absl::StrCat(
          "worker ", target, " is ", sm::WorkerStatusName(w->second.status()),
          ", not ONLINE"));
    }
    if (!Includes(w->second.features(), vm.spec().features())) {
      return Precondition(absl::StrCat("worker ", target,
                                       " lacks a feature vm '", c.name(),
                                       "' requires"));
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
      return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                   absl::StrCat("no other ONLINE worker can take vm '",
                                c.name(), "'"));
    }
  }
  PlaceVm(vm, workers_.find(target)->second);
  return OkVm(c.name());
}

ClusterStateMachine::Outcome ClusterStateMachine::DoVmObserved(
    const cluster::VmObserved& c) {
  auto it = vms_.find(c.name());
  if (it == vms_.end()) {
    return Error(cluster::RESULT_NOT_FOUND,
                 absl::StrCat("vm '", c.name(), "' does not exist"));
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
  return OkVm(c.name());
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
  auto it = kv_.find(c.key());
  if (it == kv_.end()) {
    if (kv_.size() >= options_.kv_keys_max) {
      return Error(cluster::RESULT_RESOURCE_EXHAUSTED,
                   absl::StrCat("kv table is full (", options_.kv_keys_max,
                                " keys)"));
    }
    it = kv_.emplace(c.key(), cluster::KvEntry{}).first;
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

// ---------------------------------------------------------------------------
// Queries

const cluster::WorkerRecord* ClusterStateMachine::FindWorker(
    uint64_t node_id) const {
  auto it = workers_.find(node_id);
  return it == workers_.end() ? nullptr : &it->second;
}
const cluster::TaskRecord* ClusterStateMachine::FindTask(
    absl::string_view task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}
const cluster::VmRecord* ClusterStateMachine::FindVm(
    absl::string_view name) const {
  auto it = vms_.find(name);
  return it == vms_.end() ? nullptr : &it->second;
}
const cluster::KvEntry* ClusterStateMachine::FindKv(
    absl::string_view key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

std::vector<cluster::TaskRecord> ClusterStateMachine::ListTasks(
    cluster::TaskState state, uint64_t worker_id, size_t limit) const {
  std::vector<cluster::TaskRecord> out;
  if (worker_id != 0) {
    // Only ASSIGNED/RUNNING tasks have a worker: use the per-worker index.
    auto lo = tasks_by_worker_.lower_bound(std::make_pair(worker_id, std::string()));
    for (auto it = lo; it != tasks_by_worker_.end() && it->first == worker_id &&
                       out.size() < limit;
         ++it) {
      const cluster::TaskRecord& t = tasks_.find(it->second)->second;
      if (state == cluster::TASK_STATE_UNSPECIFIED || t.state() == state) {
        out.push_back(t);
      }
    }
    return out;
  }
  for (const auto& [id, t] : tasks_) {
    if (out.size() >= limit) break;
    if (state == cluster::TASK_STATE_UNSPECIFIED || t.state() == state) {
      out.push_back(t);
    }
  }
  return out;
}

cluster::ClusterSummary ClusterStateMachine::Summary() const {
  cluster::ClusterSummary s;
  s.set_applied_index(applied_index_.value());
  s.set_now_ms(now_ms_);
  Amounts cap_total, used_total;
  for (const auto& [id, w] : workers_) {
    cluster::WorkerUsage& u = *s.add_workers();
    u.set_node_id(id);
    u.set_status(w.status());
    *u.mutable_capacity() = w.capacity();
    *u.mutable_reserved() = w.reserved();
    SetResources(*u.mutable_free(), FreeOf(w));
    auto lo = tasks_by_worker_.lower_bound(std::make_pair(id, std::string()));
    uint64_t tasks = 0;
    for (auto it = lo; it != tasks_by_worker_.end() && it->first == id; ++it) ++tasks;
    u.set_tasks(tasks);
    auto vlo = vms_by_worker_.lower_bound(std::make_pair(id, std::string()));
    uint64_t vms = 0;
    for (auto it = vlo; it != vms_by_worker_.end() && it->first == id; ++it) ++vms;
    u.set_vms(vms);
    cap_total.cpu_cores += w.capacity().cpu_cores();
    cap_total.memory_mb += w.capacity().memory_mb();
    cap_total.disk_gb += w.capacity().disk_gb();
    used_total.cpu_cores += w.reserved().cpu_cores();
    used_total.memory_mb += w.reserved().memory_mb();
    used_total.disk_gb += w.reserved().disk_gb();
  }
  for (int i = 0; i <= cluster::TaskState_MAX; ++i) s.add_tasks_by_state(0);
  for (const auto& [id, t] : tasks_) {
    const int state = static_cast<int>(t.state());
    s.set_tasks_by_state(state, s.tasks_by_state(state) + 1);
  }
  s.set_vms(vms_.size());
  s.set_vms_waiting(waiting_vms_.size());
  s.set_kv_keys(kv_.size());
  SetResources(*s.mutable_capacity_total(), cap_total);
  SetResources(*s.mutable_reserved_total(), used_total);
  return s;
}

cluster::QueryResult ClusterStateMachine::Query(const cluster::Query& q) const {
  cluster::QueryResult r;
  auto not_found = [&r](std::string message) {
    r.set_code(cluster::RESULT_NOT_FOUND);
    r.set_message(std::move(message));
  };
  switch (q.op_case()) {
    case cluster::Query::kGetTask:
      if (const auto* t = FindTask(q.get_task())) {
        *r.add_tasks() = *t;
      } else {
        not_found(absl::StrCat("task '", q.get_task(), "' does not exist"));
      }
      break;
    case cluster::Query::kListTasks: {
      const size_t limit = q.list_tasks().limit() == 0
                               ? kListResultsMax
                               : std::min<size_t>(q.list_tasks().limit(),
                                                  kListResultsMax);
      for (auto& t : ListTasks(q.list_tasks().state(),
                               q.list_tasks().worker_id(), limit)) {
        *r.add_tasks() = std::move(t);
      }
      break;
    }
    case cluster::Query::kGetWorker:
      if (const auto* w = FindWorker(q.get_worker())) {
        *r.add_workers() = *w;
      } else {
        not_found(absl::StrCat("worker ", q.get_worker(), " is not registered"));
      }
      break;
    case cluster::Query::kListWorkers:
      for (const auto& [id, w] : workers_) *r.add_workers() = w;
      break;
    case cluster::Query::kGetVm:
      if (const auto* v = FindVm(q.get_vm())) {
        *r.add_vms() = *v;
      } else {
        not_found(absl::StrCat("vm '", q.get_vm(), "' does not exist"));
      }
      break;
    case cluster::Query::kListVms:
      for (const auto& [name, v] : vms_) *r.add_vms() = v;
      break;
    case cluster::Query::kKvGet:
      if (const auto* e = FindKv(q.kv_get())) {
        *r.mutable_kv() = *e;
      } else {
        not_found(absl::StrCat("kv key '", q.kv_get(), "' does not exist"));
      }
      break;
    case cluster::Query::kSummary:
      *r.mutable_summary() = Summary();
      break;
    case cluster::Query::OP_NOT_SET:
      r.set_code(cluster::RESULT_INVALID_ARGUMENT);
      r.set_message("query has no operation");
      break;
  }
  return r;
}

// ---------------------------------------------------------------------------
// Snapshots

cluster::StateSnapshot ClusterStateMachine::ToProto() const {
  cluster::StateSnapshot s;
  s.set_format_version(kSnapshotFormatVersion);
  s.set_applied_index(applied_index_.value());
  s.set_now_ms(now_ms_);
  for (const auto& [id, w] : workers_) *s.add_workers() = w;
  for (const auto& [id, t] : tasks_) *s.add_tasks() = t;
  for (const auto& [name, v] : vms_) *s.add_vms() = v;
  for (const auto& [key, e] : kv_) *s.add_kv() = e;
  for (const auto& [id, session] : sessions_) *s.add_sessions() = session;
  return s;
}

std::string ClusterStateMachine::Snapshot() const {
  const cluster::StateSnapshot s = ToProto();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream raw(&bytes);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    CHECK(s.SerializeToCodedStream(&coded));
  }
  return bytes;
}

uint64_t ClusterStateMachine::Digest() const {
  return StableHash64(Snapshot());
}

absl::Status ClusterStateMachine::Restore(absl::string_view bytes) {
  cluster::StateSnapshot s;
  if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat(
        "cluster snapshot of ", bytes.size(), " bytes does not parse"));
  }
  return RestoreFromProto(s);
}

absl::Status ClusterStateMachine::RestoreFromProto(
    const cluster::StateSnapshot& s) {
  if (s.format_version() != kSnapshotFormatVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster snapshot format ", s.format_version(),
                     " is not the supported ", kSnapshotFormatVersion));
  }
  auto bad = [](auto&&... parts) {
    return absl::DataLossError(
        absl::StrCat("cluster snapshot: ", std::forward<decltype(parts)>(parts)...));
  };
  ClusterStateMachine fresh(options_);
  fresh.applied_index_ = Index(s.applied_index());
  fresh.now_ms_ = s.now_ms();
  for (const cluster::WorkerRecord& w : s.workers()) {
    if (w.node_id() == 0) return bad("worker with node_id 0");
    if (!ValidWorkerStatus(w.status())) {
      return bad("worker ", w.node_id(), " has invalid status");
    }
    std::string error = ValidateAmounts(ToAmounts(w.capacity()), "capacity");
    std::vector<std::string> features;
    if (error.empty()) error = ValidateFeatures(w.features(), "worker", features);
    if (!error.empty()) return bad("worker ", w.node_id(), ": ", error);
    if (features != ToVector(w.features())) {
      return bad("worker ", w.node_id(), " features are not sorted and unique");
    }
    cluster::WorkerRecord copy = w;
    copy.mutable_reserved();
    if (!fresh.workers_.emplace(w.node_id(), std::move(copy)).second) {
      return bad("worker ", w.node_id(), " appears twice");
    }
  }
  if (fresh.workers_.size() > options_.workers_max) return bad("too many workers");
  std::map<uint64_t, Amounts> used;
  auto add_use = [&used](uint64_t id, const Amounts& a) {
    Amounts& u = used[id];
    u.cpu_cores += a.cpu_cores;
    u.memory_mb += a.memory_mb;
    u.disk_gb += a.disk_gb;
  };
  for (const cluster::TaskRecord& t : s.tasks()) {
    std::string error = ValidateId(t.task_id(), "task_id", kTaskIdBytesMax);
    cluster::TaskSpec spec;
    if (error.empty()) error = ValidateTaskSpec(t.spec(), spec);
    if (!error.empty()) return bad("task '", t.task_id(), "': ", error);
    if (!SameMessage(spec, t.spec())) {
      return bad("task '", t.task_id(), "' spec is not normalized");
    }
    if (t.state() < cluster::TASK_PENDING || t.state() > cluster::TASK_CANCELLED) {
      return bad("task '", t.task_id(), "' has invalid state");
    }
    if (IsPlacedState(t.state())) {
      auto w = fresh.workers_.find(t.worker_id());
      if (w == fresh.workers_.end()) {
        return bad("task '", t.task_id(), "' is on unknown worker ", t.worker_id());
      }
      if (!Includes(w->second.features(), t.spec().resources().required_features())) {
        return bad("task '", t.task_id(), "' is on worker ", t.worker_id(),
                   " which lacks a required feature");
      }
      add_use(t.worker_id(), TaskNeed(t));
    } else if (t.worker_id() != 0) {
      return bad("task '", t.task_id(), "' is ", sm::TaskStateName(t.state()),
                 " but names worker ", t.worker_id());
    }
    if (!fresh.tasks_.emplace(t.task_id(), t).second) {
      return bad("task '", t.task_id(), "' appears twice");
    }
  }
  if (fresh.tasks_.size() > options_.tasks_max) return bad("too many tasks");
  for (const cluster::VmRecord& v : s.vms()) {
    std::string error = ValidateId(v.name(), "vm name", kVmNameBytesMax);
    cluster::VmSpec spec;
    if (error.empty()) error = ValidateVmSpec(v.spec(), spec);
    if (!error.empty()) return bad("vm '", v.name(), "': ", error);
    if (!SameMessage(spec, v.spec())) {
      return bad("vm '", v.name(), "' spec is not normalized");
    }
    if (v.desired() != cluster::VM_DESIRED_STOPPED &&
        v.desired() != cluster::VM_DESIRED_RUNNING) {
      return bad("vm '", v.name(), "' has invalid desired state");
    }
    if (v.worker_id() != 0) {
      auto w = fresh.workers_.find(v.worker_id());
      if (w == fresh.workers_.end()) {
        return bad("vm '", v.name(), "' is on unknown worker ", v.worker_id());
      }
      if (!Includes(w->second.features(), v.spec().features())) {
        return bad("vm '", v.name(), "' is on worker ", v.worker_id(),
                   " which lacks a required feature");
      }
      add_use(v.worker_id(), VmNeed(v));
    }
    if (!fresh.vms_.emplace(v.name(), v).second) {
      return bad("vm '", v.name(), "' appears twice");
    }
  }
  if (fresh.vms_.size() > options_.vms_max) return bad("too many vms");
  for (const auto& [id, w] : fresh.workers_) {
    const Amounts u = used[id];
    if (!(ToAmounts(w.reserved()) == u)) {
      return bad("worker ", id, " reservation does not equal its placed work");
    }
    if (!ToAmounts(w.capacity()).Covers(u)) {
      return bad("worker ", id, " is over-committed");
    }
    if ((w.status() == cluster::WORKER_FAILED) && !(u == Amounts{})) {
      return bad("FAILED worker ", id, " still holds work");
    }
  }
  for (const cluster::KvEntry& e : s.kv()) {
    if (!ValidateKey(e.key()).empty() || e.value().size() > kKvValueBytesMax) {
      return bad("kv entry outside the limits");
    }
    if (!fresh.kv_.emplace(e.key(), e).second) {
      return bad("kv key '", e.key(), "' appears twice");
    }
  }
  if (fresh.kv_.size() > options_.kv_keys_max) return bad("too many kv keys");
  std::set<uint64_t> last_indexes;
  for (const cluster::ClientSession& session : s.sessions()) {
    if (session.client_id() == 0 || session.last_sequence() == 0) {
      return bad("client session with id or sequence 0");
    }
    if (!last_indexes.insert(session.last_index()).second) {
      return bad("two client sessions share last index ", session.last_index());
    }
    if (!fresh.sessions_.emplace(session.client_id(), session).second) {
      return bad("client ", session.client_id(), " appears twice");
    }
  }
  if (fresh.sessions_.size() > options_.client_sessions_max) {
    return bad("too many client sessions");
  }
  fresh.RebuildDerived();
  *this = std::move(fresh);
  return absl::OkStatus();
}

void ClusterStateMachine::RebuildDerived() {
  for (const auto& [id, w] : workers_) {
    if (w.status() == cluster::WORKER_ONLINE) {
      index_.Add(id, FreeOf(w), ToVector(w.features()));
    } else if (w.status() == cluster::WORKER_DRAINING) {
      draining_workers_.insert(id);
    } else if (w.status() == cluster::WORKER_OFFLINE) {
      const uint64_t deadline = w.status_since_ms() + options_.offline_grace_ms;
      if (deadline > now_ms_) offline_timers_.insert({deadline, id});
    }
  }
  for (const auto& [id, t] : tasks_) {
    if (t.state() == cluster::TASK_PENDING) {
      if (t.not_before_ms() > now_ms_) {
        retry_timers_.insert({t.not_before_ms(), id});
      } else {
        EnqueuePending(t, /*fresh=*/false);
      }
    } else if (IsPlacedState(t.state())) {
      tasks_by_worker_.insert({t.worker_id(), id});
    }
  }
  for (const auto& [name, v] : vms_) {
    if (v.worker_id() != 0) {
      vms_by_worker_.insert({v.worker_id(), name});
    } else {
      waiting_vms_.insert({v.create_index(), name});
    }
  }
  for (const auto& [id, session] : sessions_) {
    session_lru_.insert({session.last_index(), id});
  }
}

absl::Status ResultToStatus(const cluster::Result& result) {
  switch (result.code()) {
    case cluster::RESULT_OK:
      return absl::OkStatus();
    case cluster::RESULT_INVALID_ARGUMENT:
      return absl::InvalidArgumentError(result.message());
    case cluster::RESULT_NOT_FOUND:
      return absl::NotFoundError(result.message());
    case cluster::RESULT_ALREADY_EXISTS:
      return absl::AlreadyExistsError(result.message());
    case cluster::RESULT_FAILED_PRECONDITION:
      return absl::FailedPreconditionError(result.message());
    case cluster::RESULT_RESOURCE_EXHAUSTED:
      return absl::ResourceExhaustedError(result.message());
    case cluster::RESULT_OUT_OF_RANGE:
      return absl::OutOfRangeError(result.message());
    default:
      return absl::UnknownError(
          absl::StrCat("result code ", static_cast<int>(result.code()), ": ",
                       result.message()));
  }
}

// ---------------------------------------------------------------------------
// Invariants

void ClusterStateMachine::CheckInvariants() const {
  CHECK(fresh_.empty());
  CHECK(dirty_workers_.empty());
  CHECK(!scan_needed_);
  index_.CheckInvariants();

  std::map<uint64_t, Amounts> used;
  auto add_use = [&used](uint64_t id, const Amounts& a) {
    Amounts& u = used[id];
    u.cpu_cores += a.cpu_cores;
    u.memory_mb += a.memory_mb;
    u.disk_gb += a.disk_gb;
  };
  size_t pending_eligible = 0, pending_waiting = 0, placed = 0;
  for (const auto& [id, t] : tasks_) {
    CHECK_EQ(id, t.task_id());
    if (IsPlacedState(t.state())) {
      ++placed;
      auto w = workers_.find(t.worker_id());
      CHECK(w != workers_.end()) << "task " << id << " on unknown worker";
      CHECK(Includes(w->second.features(),
                     t.spec().resources().required_features()))
          << "task " << id << " on a worker without its features";
      CHECK(tasks_by_worker_.count({t.worker_id(), id}) == 1);
      add_use(t.worker_id(), TaskNeed(t));
    } else {
      CHECK_EQ(t.worker_id(), 0u) << "task " << id;
    }
    if (t.state() == cluster::TASK_PENDING) {
      if (t.not_before_ms() > now_ms_) {
        ++pending_waiting;
        CHECK(retry_timers_.count({t.not_before_ms(), id}) == 1);
      } else {
        ++pending_eligible;
        CHECK(pending_.count(PendingKey{kTaskPriorityMax - t.spec().priority(),
                                        t.submit_index(), id}) == 1);
      }
    }
    CHECK_LE(t.failed_attempts(), t.spec().max_attempts());
  }
  CHECK_EQ(pending_.size(), pending_eligible);
  {
    NeedFloor floor;
    for (const auto& [key, need] : pending_) floor.Add(need);
    CHECK(floor.cpu == need_floor_.cpu && floor.memory == need_floor_.memory &&
          floor.disk == need_floor_.disk)
        << "pending need floor out of step";
  }
  CHECK_EQ(retry_timers_.size(), pending_waiting);
  CHECK_EQ(tasks_by_worker_.size(), placed);

  size_t vms_placed = 0, vms_waiting = 0;
  for (const auto& [name, v] : vms_) {
    CHECK_EQ(name, v.name());
    if (v.worker_id() != 0) {
      ++vms_placed;
      auto w = workers_.find(v.worker_id());
      CHECK(w != workers_.end()) << "vm " << name << " on unknown worker";
      CHECK(Includes(w->second.features(), v.spec().features()));
      CHECK(vms_by_worker_.count({v.worker_id(), name}) == 1);
      CHECK_GE(v.generation(), 1u);
      add_use(v.worker_id(), VmNeed(v));
    } else {
      ++vms_waiting;
      CHECK(waiting_vms_.count({v.create_index(), name}) == 1);
      CHECK_EQ(v.observed(), cluster::VM_OBSERVED_UNSPECIFIED);
    }
  }
  CHECK_EQ(vms_by_worker_.size(), vms_placed);
  CHECK_EQ(waiting_vms_.size(), vms_waiting);

  size_t online = 0, draining = 0, offline_timed = 0;
  for (const auto& [id, w] : workers_) {
    CHECK_EQ(id, w.node_id());
    const Amounts u = used[id];
    CHECK(ToAmounts(w.reserved()) == u)
        << "worker " << id << " reservation differs from its placed work";
    CHECK(ToAmounts(w.capacity()).Covers(u)) << "worker " << id << " over-committed";
    switch (w.status()) {
      case cluster::WORKER_ONLINE:
        ++online;
        CHECK(index_.Contains(id));
        CHECK(index_.Free(id) == FreeOf(w));
        break;
      case cluster::WORKER_DRAINING:
        ++draining;
        CHECK(draining_workers_.count(id) == 1);
        break;
      case cluster::WORKER_OFFLINE: {
        const uint64_t deadline = w.status_since_ms() + options_.offline_grace_ms;
        if (deadline > now_ms_) {
          ++offline_timed;
          CHECK(offline_timers_.count({deadline, id}) == 1);
        } else {
          auto lo = tasks_by_worker_.lower_bound(std::make_pair(id, std::string()));
          CHECK(lo == tasks_by_worker_.end() || lo->first != id)
              << "OFFLINE worker " << id << " kept tasks past its grace period";
        }
        break;
      }
      case cluster::WORKER_FAILED:
        CHECK(u == Amounts{}) << "FAILED worker " << id << " holds work";
        break;
      default:
        break;
    }
  }
  CHECK_EQ(index_.size(), online);
  CHECK_EQ(draining_workers_.size(), draining);
  CHECK_EQ(offline_timers_.size(), offline_timed);

  CHECK_LE(sessions_.size(), options_.client_sessions_max);
  CHECK_EQ(session_lru_.size(), sessions_.size());
  for (const auto& [index, client] : session_lru_) {
    auto it = sessions_.find(client);
    CHECK(it != sessions_.end());
    CHECK_EQ(it->second.last_index(), index);
  }

  // Backfill is complete: nothing eligible fits anywhere.
  for (const auto& [create_index, name] : waiting_vms_) {
    const cluster::VmRecord& v = vms_.find(name)->second;
    CHECK_EQ(index_.BestFit(VmNeed(v), ToVector(v.spec().features())), 0u)
        << "waiting vm " << name << " fits somewhere";
  }
  for (const uint64_t node_id : draining_workers_) {
    auto lo = vms_by_worker_.lower_bound(std::make_pair(node_id, std::string()));
    for (auto it = lo; it != vms_by_worker_.end() && it->first == node_id; ++it) {
      const cluster::VmRecord& v = vms_.find(it->second)->second;
      CHECK_EQ(index_.BestFit(VmNeed(v), ToVector(v.spec().features()), node_id),
               0u)
          << "vm " << v.name() << " on draining worker could migrate";
    }
  }
  for (const auto& [key, need] : pending_) {
    const cluster::TaskRecord& t = tasks_.find(std::get<2>(key))->second;
    CHECK(need == TaskNeed(t)) << "pending task " << t.task_id();
    CHECK_EQ(index_.BestFit(TaskNeed(t),
                            ToVector(t.spec().resources().required_features())),
             0u)
        << "pending task " << t.task_id() << " fits somewhere";
  }
}

}  // namespace blixard
