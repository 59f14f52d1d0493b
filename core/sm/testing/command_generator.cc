#include "core/sm/testing/command_generator.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::sm::testing {
namespace {

const char* const kFeatures[] = {"arm", "gpu", "nvme", "ssd", "x86"};
constexpr uint64_t kFeatureCount = sizeof(kFeatures) / sizeof(kFeatures[0]);

enum class Kind {
  kRegisterWorker,
  kSetWorkerStatus,
  kWorkerLost,
  kRemoveWorker,
  kSubmitTask,
  kTaskStarted,
  kTaskFinished,
  kCancelTask,
  kCreateVm,
  kStartVm,
  kStopVm,
  kDeleteVm,
  kMigrateVm,
  kVmObserved,
  kKvPut,
  kKvDelete,
  kKvCas,
  kAdvanceTime,
  kMemberJoined,
};

template <typename T>
const T* PickFrom(Rng& rng, const std::vector<const T*>& items) {
  if (items.empty()) return nullptr;
  return items[rng.Uniform(items.size())];
}

}  // namespace

CommandGenerator::CommandGenerator(Rng rng, CommandGeneratorOptions options)
    : rng_(rng), options_(options) {
  CHECK_GE(options_.node_ids_max, 1u);
  CHECK_GE(options_.task_ids_max, 1u);
  CHECK_GE(options_.vm_names_max, 1u);
  CHECK_GE(options_.kv_keys_max, 1u);
  CHECK_GE(options_.clients, 1u);
  CHECK_LE(options_.invalid_per_mille + options_.retry_per_mille, 1000u);
}

uint64_t CommandGenerator::PickNodeId() {
  return rng_.Range(1, options_.node_ids_max);
}
std::string CommandGenerator::PickTaskId() {
  return absl::StrCat("task-", rng_.Uniform(options_.task_ids_max));
}
std::string CommandGenerator::PickVmName() {
  return absl::StrCat("vm-", rng_.Uniform(options_.vm_names_max));
}

void CommandGenerator::AddFeatures(
    google::protobuf::RepeatedPtrField<std::string>& out, uint64_t max_count) {
  const uint64_t count = rng_.Uniform(max_count + 1);
  for (uint64_t i = 0; i < count; ++i) {
    out.Add(kFeatures[rng_.Uniform(kFeatureCount)]);
  }
}

cluster::TaskSpec CommandGenerator::RandomTaskSpec() {
  cluster::TaskSpec spec;
  spec.set_command(rng_.Chance(1, 2) ? "/bin/true" : "/usr/bin/make");
  if (rng_.Chance(1, 2)) spec.add_args(absl::StrCat("-j", rng_.Range(1, 8)));
  cluster::TaskResources& r = *spec.mutable_resources();
  r.set_cpu_cores(rng_.Range(1, 8));
  r.set_memory_mb(rng_.Range(1, 32) * 512);
  r.set_disk_gb(rng_.Range(0, 100));
  AddFeatures(*r.mutable_required_features(), 1);
  spec.set_timeout_secs(rng_.Range(0, 3600));
  spec.set_max_attempts(static_cast<uint32_t>(rng_.Range(1, 4)));
  spec.set_priority(static_cast<uint32_t>(rng_.Range(0, 3)));
  return spec;
}

cluster::VmSpec CommandGenerator::RandomVmSpec() {
  cluster::VmSpec spec;
  spec.set_vcpus(rng_.Range(1, 4));
  spec.set_memory_mb(rng_.Range(1, 16) * 512);
  spec.set_disk_gb(rng_.Range(1, 50));
  spec.set_image(rng_.Chance(1, 2) ? "debian-12" : "alpine-3.19");
  AddFeatures(*spec.mutable_features(), 1);
  return spec;
}

cluster::Command CommandGenerator::Next(const ClusterStateMachine& sm) {
  now_ms_ += rng_.Uniform(options_.time_step_ms_max + 1);
  if (rng_.Chance(1, 50)) now_ms_ += rng_.Uniform(120'000);  // a long pause

  // A retry: the same write again, stamped with the current log time.
  if (!last_sent_.empty() && rng_.Uniform(1000) < options_.retry_per_mille) {
    auto it = last_sent_.begin();
    std::advance(it, static_cast<long>(rng_.Uniform(last_sent_.size())));
    cluster::Command retry = it->second;
    retry.set_log_time_ms(now_ms_);
    return retry;
  }

  cluster::Command command = Generate(sm);
  if (rng_.Uniform(1000) < options_.invalid_per_mille) MakeInvalid(command);
  command.set_log_time_ms(now_ms_);
  const uint64_t client = command.request_id().client_id();
  if (client != 0) {
    const uint64_t sequence = ++sequences_[client];
    command.mutable_request_id()->set_sequence(sequence);
    last_sent_[client] = command;
  }
  return command;
}

cluster::Command CommandGenerator::Generate(const ClusterStateMachine& sm) {
  const std::pair<Kind, uint32_t> weights[] = {
      {Kind::kRegisterWorker, options_.weight_register_worker},
      {Kind::kSetWorkerStatus, options_.weight_set_worker_status},
      {Kind::kWorkerLost, options_.weight_worker_lost},
      {Kind::kRemoveWorker, options_.weight_remove_worker},
      {Kind::kSubmitTask, options_.weight_submit_task},
      {Kind::kTaskStarted, options_.weight_task_started},
      {Kind::kTaskFinished, options_.weight_task_finished},
      {Kind::kCancelTask, options_.weight_cancel_task},
      {Kind::kCreateVm, options_.weight_create_vm},
      {Kind::kStartVm, options_.weight_start_vm},
      {Kind::kStopVm, options_.weight_stop_vm},
      {Kind::kDeleteVm, options_.weight_delete_vm},
      {Kind::kMigrateVm, options_.weight_migrate_vm},
      {Kind::kVmObserved, options_.weight_vm_observed},
      {Kind::kKvPut, options_.weight_kv_put},
      {Kind::kKvDelete, options_.weight_kv_delete},
      {Kind::kKvCas, options_.weight_kv_cas},
      {Kind::kAdvanceTime, options_.weight_advance_time},
      {Kind::kMemberJoined, options_.weight_member_joined},
  };
  uint64_t total = 0;
  for (const auto& [kind, weight] : weights) total += weight;
  CHECK_GT(total, 0u) << "every command weight is 0";
  uint64_t pick = rng_.Uniform(total);
  Kind kind = Kind::kAdvanceTime;
  for (const auto& [k, weight] : weights) {
    if (pick < weight) {
      kind = k;
      break;
    }
    pick -= weight;
  }

  cluster::Command c;
  const uint64_t user = rng_.Range(1, options_.clients);
  auto set_client = [&c](uint64_t client) {
    c.mutable_request_id()->set_client_id(client);
  };

  // Live objects to aim at.
  std::vector<const cluster::WorkerRecord*> workers;
  for (const auto& [id, w] : sm.workers()) workers.push_back(&w);
  std::vector<const cluster::TaskRecord*> assigned, running, open;
  for (const auto& [id, t] : sm.tasks()) {
    if (t.state() == cluster::TASK_ASSIGNED) assigned.push_back(&t);
    if (t.state() == cluster::TASK_RUNNING) running.push_back(&t);
    if (t.state() == cluster::TASK_ASSIGNED ||
        t.state() == cluster::TASK_RUNNING ||
        t.state() == cluster::TASK_PENDING) {
      open.push_back(&t);
    }
  }
  std::vector<const cluster::VmRecord*> vms, placed_vms;
  for (const auto& [name, v] : sm.vms()) {
    vms.push_back(&v);
    if (v.worker_id() != 0) placed_vms.push_back(&v);
  }

  switch (kind) {
    case Kind::kRegisterWorker: {
      const uint64_t id = PickNodeId();
      set_client(kAgentClientBase + id);
      cluster::RegisterWorker& r = *c.mutable_register_worker();
      r.set_node_id(id);
      r.set_address(absl::StrCat("10.0.0.", id, ":7000"));
      r.mutable_capacity()->set_cpu_cores(uint64_t{2} << rng_.Uniform(4));
      r.mutable_capacity()->set_memory_mb(uint64_t{4096} << rng_.Uniform(4));
      r.mutable_capacity()->set_disk_gb(uint64_t{50} << rng_.Uniform(4));
      AddFeatures(*r.mutable_features(), 3);
      break;
    }
    case Kind::kSetWorkerStatus: {
      const cluster::WorkerRecord* w = PickFrom(rng_, workers);
      const uint64_t id = w != nullptr ? w->node_id() : PickNodeId();
      set_client(kAgentClientBase + id);
      c.mutable_set_worker_status()->set_node_id(id);
      // Mostly back to ONLINE, the rest spread over every status.
      const auto status =
          rng_.Chance(2, 5)
              ? cluster::WORKER_ONLINE
              : static_cast<cluster::WorkerStatus>(
                    rng_.Range(cluster::WORKER_ONLINE, cluster::WORKER_FAILED));
      c.mutable_set_worker_status()->set_status(status);
      break;
    }
    case Kind::kWorkerLost: {
      const cluster::WorkerRecord* w = PickFrom(rng_, workers);
      c.mutable_worker_lost()->set_node_id(w != nullptr ? w->node_id()
                                                        : PickNodeId());
      c.mutable_worker_lost()->set_reason("heartbeat TTL expired");
      break;
    }
    case Kind::kRemoveWorker: {
      set_client(user);
      const cluster::WorkerRecord* w = PickFrom(rng_, workers);
      c.mutable_remove_worker()->set_node_id(w != nullptr ? w->node_id()
                                                          : PickNodeId());
      break;
    }
    case Kind::kSubmitTask: {
      set_client(user);
      cluster::SubmitTask& s = *c.mutable_submit_task();
      s.set_task_id(PickTaskId());
      const cluster::TaskRecord* existing = sm.FindTask(s.task_id());
      if (existing != nullptr && rng_.Chance(2, 3)) {
        *s.mutable_spec() = existing->spec();  // an idempotent re-submit
      } else {
        *s.mutable_spec() = RandomTaskSpec();
      }
      break;
    }
    case Kind::kTaskStarted: {
      const cluster::TaskRecord* t = PickFrom(rng_, assigned);
      cluster::TaskStarted& s = *c.mutable_task_started();
      if (t == nullptr) {
        s.set_task_id(PickTaskId());
        s.set_worker_id(PickNodeId());
        s.set_attempt(1);
      } else {
        s.set_task_id(t->task_id());
        s.set_worker_id(t->worker_id());
        s.set_attempt(t->attempt());
      }
      set_client(kAgentClientBase + s.worker_id());
      break;
    }
    case Kind::kTaskFinished: {
      const cluster::TaskRecord* t = PickFrom(
          rng_, rng_.Chance(3, 4) && !running.empty() ? running : assigned);
      cluster::TaskFinished& f = *c.mutable_task_finished();
      if (t == nullptr) {
        f.set_task_id(PickTaskId());
        f.set_worker_id(PickNodeId());
        f.mutable_result()->set_attempt(1);
      } else {
        f.set_task_id(t->task_id());
        f.set_worker_id(t->worker_id());
        f.mutable_result()->set_attempt(t->attempt());
      }
      cluster::TaskResult& r = *f.mutable_result();
      const uint64_t outcome = rng_.Uniform(10);
      r.set_success(outcome < 6);
      r.set_timed_out(outcome == 9);
      r.set_exit_code(r.success() ? 0
                                  : static_cast<int32_t>(rng_.Range(1, 127)));
      r.set_output_tail(
          std::string(rng_.Uniform(rng_.Chance(1, 20) ? 6000 : 64), 'o'));
      if (!r.success()) r.set_error(absl::StrCat("exit ", r.exit_code()));
      r.set_execution_time_ms(rng_.Uniform(100'000));
      set_client(kAgentClientBase + f.worker_id());
      break;
    }
    case Kind::kCancelTask: {
      set_client(user);
      const cluster::TaskRecord* t = PickFrom(rng_, open);
      c.mutable_cancel_task()->set_task_id(t != nullptr ? t->task_id()
                                                        : PickTaskId());
      break;
    }
    case Kind::kCreateVm: {
      set_client(user);
      cluster::CreateVm& v = *c.mutable_create_vm();
      v.set_name(PickVmName());
      const cluster::VmRecord* existing = sm.FindVm(v.name());
      if (existing != nullptr && rng_.Chance(1, 2)) {
        *v.mutable_spec() = existing->spec();
      } else {
        *v.mutable_spec() = RandomVmSpec();
      }
      break;
    }
    case Kind::kStartVm:
      set_client(user);
      c.mutable_start_vm()->set_name(PickVmName());
      break;
    case Kind::kStopVm:
      set_client(user);
      c.mutable_stop_vm()->set_name(PickVmName());
      break;
    case Kind::kDeleteVm:
      set_client(user);
      c.mutable_delete_vm()->set_name(PickVmName());
      break;
    case Kind::kMigrateVm: {
      set_client(user);
      c.mutable_migrate_vm()->set_name(PickVmName());
      if (rng_.Chance(1, 2))
        c.mutable_migrate_vm()->set_target_worker_id(PickNodeId());
      break;
    }
    case Kind::kVmObserved: {
      const cluster::VmRecord* v = PickFrom(rng_, placed_vms);
      cluster::VmObserved& o = *c.mutable_vm_observed();
      if (v == nullptr) {
        o.set_name(PickVmName());
        o.set_worker_id(PickNodeId());
        o.set_generation(1);
        o.set_state(cluster::VM_CREATING);
      } else {
        o.set_name(v->name());
        o.set_worker_id(v->worker_id());
        o.set_generation(rng_.Chance(1, 10) && v->generation() > 1
                             ? v->generation() - 1
                             : v->generation());
        // Walk towards the desired state, with the odd failure.
        cluster::VmObservedState next = cluster::VM_FAILED;
        const bool run = v->desired() == cluster::VM_DESIRED_RUNNING;
        switch (v->observed()) {
          case cluster::VM_OBSERVED_UNSPECIFIED:
            next = cluster::VM_CREATING;
            break;
          case cluster::VM_CREATING:
            next = run ? cluster::VM_STARTING : cluster::VM_STOPPED;
            break;
          case cluster::VM_STARTING:
            next = run ? cluster::VM_RUNNING : cluster::VM_STOPPING;
            break;
          case cluster::VM_RUNNING:
            next = run ? cluster::VM_FAILED : cluster::VM_STOPPING;
            break;
          case cluster::VM_STOPPING:
            next = cluster::VM_STOPPED;
            break;
          case cluster::VM_STOPPED:
            next = run ? cluster::VM_STARTING : cluster::VM_FAILED;
            break;
          case cluster::VM_FAILED:
            next = run ? cluster::VM_STARTING : cluster::VM_STOPPED;
            break;
          default:
            break;
        }
        if (rng_.Chance(1, 10)) {
          next = static_cast<cluster::VmObservedState>(
              rng_.Range(cluster::VM_CREATING, cluster::VM_FAILED));
        }
        o.set_state(next);
      }
      set_client(kAgentClientBase + o.worker_id());
      break;
    }
    case Kind::kKvPut:
      set_client(user);
      c.mutable_kv_put()->set_key(
          absl::StrCat("k", rng_.Uniform(options_.kv_keys_max)));
      c.mutable_kv_put()->set_value(absl::StrCat("v", rng_.Uniform(1000)));
      break;
    case Kind::kKvDelete:
      set_client(user);
      c.mutable_kv_delete()->set_key(
          absl::StrCat("k", rng_.Uniform(options_.kv_keys_max)));
      break;
    case Kind::kKvCas: {
      set_client(user);
      cluster::KvCompareAndSwap& cas = *c.mutable_kv_compare_and_swap();
      cas.set_key(absl::StrCat("k", rng_.Uniform(options_.kv_keys_max)));
      const cluster::KvEntry* e = sm.FindKv(cas.key());
      const uint64_t version = e != nullptr ? e->mod_index() : 0;
      cas.set_expected_version(rng_.Chance(3, 4) ? version
                                                 : rng_.Uniform(version + 3));
      cas.set_value(absl::StrCat("c", rng_.Uniform(1000)));
      break;
    }
    case Kind::kAdvanceTime:
      c.mutable_advance_time();
      break;
    case Kind::kMemberJoined: {
      // Few ids and few nonces: first joins, retries and refused second
      // stores all happen.
      cluster::MemberJoined& joined = *c.mutable_member_joined();
      joined.set_node_id(rng_.Range(1, 8));
      joined.set_store_nonce(rng_.Range(1, 3));
      break;
    }
  }
  return c;
}

void CommandGenerator::MakeInvalid(cluster::Command& c) {
  switch (c.op_case()) {
    case cluster::Command::kRegisterWorker:
      if (rng_.Chance(1, 2)) {
        c.mutable_register_worker()->mutable_capacity()->Clear();
      } else {
        c.mutable_register_worker()->add_features("");
      }
      break;
    case cluster::Command::kSetWorkerStatus:
      c.mutable_set_worker_status()->set_status(
          cluster::WORKER_STATUS_UNSPECIFIED);
      break;
    case cluster::Command::kSubmitTask: {
      cluster::TaskSpec& spec = *c.mutable_submit_task()->mutable_spec();
      switch (rng_.Uniform(4)) {
        case 0:
          spec.set_max_attempts(0);
          break;
        case 1:
          spec.mutable_resources()->set_cpu_cores(kWorkerCpuCoresMax + 1);
          break;
        case 2:
          spec.clear_command();
          break;
        default:
          c.mutable_submit_task()->clear_task_id();
          break;
      }
      break;
    }
    case cluster::Command::kTaskStarted:
      c.mutable_task_started()->set_attempt(c.task_started().attempt() + 7);
      break;
    case cluster::Command::kTaskFinished:
      c.mutable_task_finished()->set_worker_id(c.task_finished().worker_id() +
                                               99);
      break;
    case cluster::Command::kCreateVm:
      c.mutable_create_vm()->mutable_spec()->clear_image();
      break;
    case cluster::Command::kVmObserved:
      c.mutable_vm_observed()->set_state(cluster::VM_OBSERVED_UNSPECIFIED);
      break;
    case cluster::Command::kKvPut:
      c.mutable_kv_put()->clear_key();
      break;
    case cluster::Command::kMemberJoined:
      c.mutable_member_joined()->set_store_nonce(0);
      break;
    default:
      c.clear_op();  // a command with no operation
      break;
  }
}

}  // namespace blixard::sm::testing
