// The Host's agent on one node, in the simulated world: it starts the work
// the replicated state assigns to its worker, once, and retries a start the
// executor refused on the next tick, even when nothing else changes.
//
// The agent reconciles only after something it reads changed (an apply, a
// snapshot, an executor event, a refused start); these tests pin both halves
// of that rule: no repeated starts while nothing changes, no lost retry.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/env.h"
#include "core/host/host.h"
#include "core/host/observer.h"
#include "core/base/logger.h"
#include "gtest/gtest.h"
#include "sim/sim_disk.h"
#include "sim/sim_network.h"
#include "sim/sim_node_env.h"
#include "sim/world.h"

namespace blixard::sim {
namespace {

constexpr int64_t kTickUs = 100'000;
const NodeId kNode(1);

// Forwards to the node's simulated executor, recording every Start and
// refusing the first `refuse` of them the way a full node does.
class RecordingExecutor final : public Executor {
 public:
  RecordingExecutor(Executor* inner, const World* world, int refuse)
      : inner_(inner), world_(world), refuse_(refuse) {}

  void SetCallback(Callback callback) override { inner_->SetCallback(std::move(callback)); }

  absl::Status Start(const WorkSpec& spec) override {
    starts_.emplace_back(world_->now_us(), spec.id);
    if (refuse_ > 0) {
      --refuse_;
      return absl::ResourceExhaustedError("test: the node is full");
    }
    return inner_->Start(spec);
  }

  bool Stop(WorkKind kind, absl::string_view id) override { return inner_->Stop(kind, id); }

  std::vector<std::string> Running(WorkKind kind) const override {
    return inner_->Running(kind);
  }

  // Virtual times of the starts of `id`.
  std::vector<int64_t> StartsOf(const std::string& id) const {
    std::vector<int64_t> at;
    for (const auto& [t, started] : starts_) {
      if (started == id) at.push_back(t);
    }
    return at;
  }

 private:
  Executor* inner_;
  const World* world_;
  int refuse_;
  std::vector<std::pair<int64_t, std::string>> starts_;
};

// One voter that is also a worker, under no faults.
class OneNode {
 public:
  explicit OneNode(int refuse_starts) : world_(7), network_(&world_, SimNetworkOptions()) {
    world_.AddNode(kNode);
    SimNodeEnvOptions env_options;
    // Tasks neither fail nor finish within a test: every start is the agent's.
    env_options.executor.task_failure_per_million = 0;
    env_options.executor.task_run_min_us = 3600 * kMicrosPerSecond;
    env_options.executor.task_run_max_us = 3600 * kMicrosPerSecond;
    env_ = std::make_unique<SimNodeEnv>(&world_, &network_, kNode, env_options);
    SimDiskOptions disk;
    disk.schedule = [this](uint64_t delay_us, std::function<void()> fn) {
      world_.ScheduleAfter(static_cast<int64_t>(delay_us), kNode, std::move(fn));
    };
    disk_ = std::make_unique<SimDisk>(std::move(disk));
    Env env = env_->MakeEnv(disk_.get());
    executor_ = std::make_unique<RecordingExecutor>(env.executor, &world_, refuse_starts);
    env.executor = executor_.get();

    host::HostOptions options;
    options.id = kNode;
    options.initial_voters = {kNode};
    options.initial_cluster_state = host::InitialClusterState::kNew;
    options.tick_us = kTickUs;
    cluster::RegisterWorker worker;
    worker.set_address("10.0.0.1:7000");
    worker.mutable_capacity()->set_cpu_cores(8);
    worker.mutable_capacity()->set_memory_mb(16384);
    worker.mutable_capacity()->set_disk_gb(100);
    options.worker = worker;
    host_ = std::make_unique<host::Host>(options, env, &logger_, &observer_);
  }

  void Start() {
    ASSERT_TRUE(host_->Start().ok());
    RunFor(3 * kMicrosPerSecond);  // elected, and the worker registered
    ASSERT_TRUE(host_->is_leader());
    ASSERT_NE(host_->state_machine().FindWorker(kNode.value()), nullptr);
  }

  void RunFor(int64_t us) { world_.RunUntil(world_.now_us() + us); }

  // Submits a 1-cpu task and runs until it is answered.
  void SubmitTask(const std::string& id) {
    api::ClientRequest request;
    cluster::Command* command = request.mutable_command();
    command->mutable_request_id()->set_client_id(1000);
    command->mutable_request_id()->set_sequence(++sequence_);
    cluster::SubmitTask* submit = command->mutable_submit_task();
    submit->set_task_id(id);
    submit->mutable_spec()->set_command("sleep");
    submit->mutable_spec()->mutable_resources()->set_cpu_cores(1);
    submit->mutable_spec()->set_max_attempts(1);
    std::optional<api::ClientResponse> response;
    host_->Submit(std::move(request),
                  [&response](const api::ClientResponse& r) { response = r; });
    for (int i = 0; i < 100 && !response.has_value(); ++i) RunFor(kTickUs);
    ASSERT_TRUE(response.has_value());
    ASSERT_EQ(response->status(), api::ClientResponse::STATUS_OK) << response->DebugString();
  }

  const cluster::TaskRecord* Task(const std::string& id) const {
    return host_->state_machine().FindTask(id);
  }
  const RecordingExecutor& executor() const { return *executor_; }

 private:
  World world_;
  SimNetwork network_;
  std::unique_ptr<SimNodeEnv> env_;
  std::unique_ptr<SimDisk> disk_;
  std::unique_ptr<RecordingExecutor> executor_;
  NullLogger logger_;
  host::NullObserver observer_;
  std::unique_ptr<host::Host> host_;
  uint64_t sequence_ = 0;
};

TEST(HostAgentTest, StartsAssignedWorkOnceAndNotAgainWhileNothingChanges) {
  OneNode node(/*refuse_starts=*/0);
  node.Start();
  node.SubmitTask("t1");
  node.RunFor(2 * kMicrosPerSecond);
  ASSERT_NE(node.Task("t1"), nullptr);
  EXPECT_EQ(node.Task("t1")->state(), cluster::TASK_RUNNING);
  // Many ticks, and time-advance applies, later: still the one start.
  node.RunFor(20 * kMicrosPerSecond);
  EXPECT_EQ(node.executor().StartsOf("t1").size(), 1u);
  EXPECT_EQ(node.Task("t1")->state(), cluster::TASK_RUNNING);
}

TEST(HostAgentTest, RetriesARefusedStartOnTheNextTick) {
  OneNode node(/*refuse_starts=*/1);
  node.Start();
  node.SubmitTask("t1");
  node.RunFor(2 * kMicrosPerSecond);
  const std::vector<int64_t> starts = node.executor().StartsOf("t1");
  ASSERT_EQ(starts.size(), 2u) << "the refused start was not retried";
  // The next tick, not the next apply: nothing else had to happen first.
  EXPECT_LE(starts[1] - starts[0], kTickUs);
  ASSERT_NE(node.Task("t1"), nullptr);
  EXPECT_EQ(node.Task("t1")->state(), cluster::TASK_RUNNING);
}

}  // namespace
}  // namespace blixard::sim
