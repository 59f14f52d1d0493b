// Random but mostly valid streams of cluster commands, for property tests,
// the simulator's workload and the state-machine fuzzer. Test-only.
//
//   Rng rng(seed);
//   CommandGenerator gen(rng.Fork("commands"));
//   ClusterStateMachine sm;
//   for (uint64_t i = 1; i <= 500; ++i) {
//     cluster::Command command = gen.Next(sm);
//     sm.Apply(Index(i), command);
//   }
//
// The generator looks at the current state to aim lifecycle commands
// (TaskStarted, TaskFinished, VmObserved, status changes) at live objects
// with the right worker, attempt and generation, so most of them apply.
// A configurable share is deliberately invalid, and a share repeats a
// client's last write with the same request id (a retry). Ids come from
// small pools so commands collide: the same task id submitted twice,
// several clients racing on the same VM. Same seed and same state sequence
// give the same commands. Log time advances by a random step per command.
// Client ids: users are 1..options.clients (tasks, VMs, KV, RemoveWorker);
// the agent of worker n writes as client kAgentClientBase + n (registration,
// status, task and VM reports); leader-proposed commands (WorkerLost,
// AdvanceTime) carry client 0 and no session.
#ifndef BLIXARD_CORE_SM_TESTING_COMMAND_GENERATOR_H_
#define BLIXARD_CORE_SM_TESTING_COMMAND_GENERATOR_H_

#include <cstdint>
#include <map>
#include <string>

#include "core/base/rng.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/cluster_state_machine.h"

namespace blixard::sm::testing {

inline constexpr uint64_t kAgentClientBase = 1000;

struct CommandGeneratorOptions {
  uint64_t node_ids_max = 8;   // worker ids are 1..node_ids_max
  uint64_t task_ids_max = 40;  // task ids are "task-0".."task-<max-1>"
  uint64_t vm_names_max = 6;   // "vm-0".."vm-<max-1>"
  uint64_t kv_keys_max = 6;    // "k0".."k<max-1>"
  uint64_t clients = 4;        // user clients 1..clients
  uint64_t time_step_ms_max = 4000;
  uint32_t invalid_per_mille = 50;  // deliberately invalid commands
  uint32_t retry_per_mille = 40;    // re-sent writes (same request id)

  // Relative weights of the command kinds (0 disables a kind).
  uint32_t weight_register_worker = 6;
  uint32_t weight_set_worker_status = 6;
  uint32_t weight_worker_lost = 2;
  uint32_t weight_remove_worker = 1;
  uint32_t weight_submit_task = 16;
  uint32_t weight_task_started = 10;
  uint32_t weight_task_finished = 12;
  uint32_t weight_cancel_task = 2;
  uint32_t weight_create_vm = 4;
  uint32_t weight_start_vm = 3;
  uint32_t weight_stop_vm = 3;
  uint32_t weight_delete_vm = 1;
  uint32_t weight_migrate_vm = 2;
  uint32_t weight_vm_observed = 8;
  uint32_t weight_kv_put = 3;
  uint32_t weight_kv_delete = 1;
  uint32_t weight_kv_cas = 3;
  uint32_t weight_advance_time = 3;
  uint32_t weight_member_joined = 1;
};

class CommandGenerator {
 public:
  explicit CommandGenerator(Rng rng, CommandGeneratorOptions options = {});

  // The next command, aimed at the state `sm` is in now.
  cluster::Command Next(const ClusterStateMachine& sm);

  uint64_t now_ms() const { return now_ms_; }
  const CommandGeneratorOptions& options() const { return options_; }

 private:
  cluster::Command Generate(const ClusterStateMachine& sm);
  void MakeInvalid(cluster::Command& command);
  uint64_t PickNodeId();
  std::string PickTaskId();
  std::string PickVmName();
  cluster::TaskSpec RandomTaskSpec();
  cluster::VmSpec RandomVmSpec();
  void AddFeatures(google::protobuf::RepeatedPtrField<std::string>& out,
                   uint64_t max_count);

  Rng rng_;
  CommandGeneratorOptions options_;
  uint64_t now_ms_ = 0;
  // Per client: last sequence used and the last command sent (for retries).
  std::map<uint64_t, uint64_t> sequences_;
  std::map<uint64_t, cluster::Command> last_sent_;
};

}  // namespace blixard::sm::testing

#endif  // BLIXARD_CORE_SM_TESTING_COMMAND_GENERATOR_H_
