// Unit tests of the Host on a scripted Env, part 3: the leader controllers
// and the worker agent (part 1, host_test.cc, has the Ready loop).
#include "core/host/host.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/host/testing/host_harness.h"
#include "core/host/testing/scripted_env.h"
#include "core/proto/cluster.pb.h"
#include "core/proto/host.pb.h"
#include "core/proto/raft.pb.h"
#include "gtest/gtest.h"

namespace blixard::host {
namespace {

using testing::CommandRequest;
using testing::CommandsWritten;
using testing::CountCommands;
using testing::DurableCommands;
using testing::HostPacket;
using testing::kTestTickUs;
using testing::PutRequest;
using testing::ScriptedLogStore;
using testing::SubmitAndSettle;
using testing::TestCluster;

const NodeId kN1(1);

cluster::Command RegisterWorkerCommand(uint64_t node_id) {
  cluster::Command command;
  cluster::RegisterWorker* worker = command.mutable_register_worker();
  worker->set_node_id(node_id);
  worker->set_address(absl::StrCat("10.0.0.", node_id));
  worker->mutable_capacity()->set_cpu_cores(8);
  worker->mutable_capacity()->set_memory_mb(8192);
  worker->mutable_capacity()->set_disk_gb(100);
  return command;
}

cluster::Command SubmitTaskCommand(const std::string& id, uint64_t timeout_secs) {
  cluster::Command command;
  command.mutable_submit_task()->set_task_id(id);
  cluster::TaskSpec* spec = command.mutable_submit_task()->mutable_spec();
  spec->set_command("echo");
  spec->add_args("hello");
  spec->mutable_resources()->set_cpu_cores(1);
  spec->mutable_resources()->set_memory_mb(64);
  spec->set_timeout_secs(timeout_secs);
  spec->set_max_attempts(1);
  return command;
}

// ---------------------------------------------------------------------------
// 6. Leader controllers.

TEST(HostControllerTest, LeaderDeclaresAWorkerLostOnlyAfterItsHeartbeatsStopForTheTtl) {
  constexpr int64_t kTtlUs = 3'000'000;
  TestCluster cluster({kN1}, [](HostOptions& options) { options.worker_ttl_us = kTtlUs; });
  cluster.StartAll();
  cluster.ElectLeader();
  cluster.Settle();
  Host& host = cluster.host(kN1);
  ASSERT_EQ(
      SubmitAndSettle(cluster, kN1, CommandRequest(RegisterWorkerCommand(5), 3, 1)).result().code(),
      cluster::RESULT_OK);

  // Worker 5's agent heartbeats every 500 ms for two TTLs: never lost.
  HostMessage heartbeat;
  heartbeat.mutable_heartbeat()->set_node_id(5);
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(cluster.network().Inject(HostPacket(NodeId(5), kN1, heartbeat)));
    cluster.AdvanceBy(500'000);
  }
  const ScriptedLogStore& store = cluster.node(kN1).store();
  EXPECT_EQ(CountCommands(CommandsWritten(store), cluster::Command::kWorkerLost), 0u);
  ASSERT_TRUE(cluster.network().Inject(HostPacket(NodeId(5), kN1, heartbeat)));
  const MonoMicros last_heartbeat = cluster.now();
  cluster.AdvanceTo(last_heartbeat + kTtlUs - kTestTickUs);
  EXPECT_EQ(CountCommands(CommandsWritten(store), cluster::Command::kWorkerLost), 0u)
      << "declared lost before the TTL";
  EXPECT_EQ(host.state_machine().FindWorker(5)->status(), cluster::WORKER_ONLINE);

  cluster.AdvanceTo(last_heartbeat + kTtlUs + 2 * kTestTickUs);
  const std::vector<cluster::Command> commands = DurableCommands(store);
  ASSERT_EQ(CountCommands(commands, cluster::Command::kWorkerLost), 1u);
  EXPECT_EQ(host.state_machine().FindWorker(5)->status(), cluster::WORKER_OFFLINE);
}

TEST(HostControllerTest, LeaderProposesAdvanceTimeOnlyWhenIdleForAdvanceTimeUs) {
  constexpr int64_t kIdleUs = 1'000'000;
  TestCluster cluster({kN1}, [](HostOptions& options) { options.advance_time_us = kIdleUs; });
  cluster.StartAll();
  cluster.ElectLeader();
  cluster.Settle();
  Host& host = cluster.host(kN1);
  const ScriptedLogStore& store = cluster.node(kN1).store();

  SubmitAndSettle(cluster, kN1, PutRequest("k", "v", 7, 1));
  const MonoMicros proposed_at = cluster.now();
  const size_t before = CountCommands(CommandsWritten(store), cluster::Command::kAdvanceTime);
  const uint64_t state_ms = host.state_machine().now_ms();
  cluster.AdvanceTo(proposed_at + kIdleUs - kTestTickUs);
  EXPECT_EQ(CountCommands(CommandsWritten(store), cluster::Command::kAdvanceTime), before)
      << "AdvanceTime while not idle for advance_time_us";
  cluster.AdvanceTo(proposed_at + kIdleUs + kTestTickUs);
  EXPECT_EQ(CountCommands(CommandsWritten(store), cluster::Command::kAdvanceTime), before + 1);
  EXPECT_GE(host.state_machine().now_ms(), state_ms + kIdleUs / kMicrosPerMilli);
}

TEST(HostControllerTest, RunningTaskPastItsTimeoutPlusSlackIsDeclaredTimedOut) {
  constexpr uint64_t kSlackMs = 500;
  TestCluster cluster({kN1}, [](HostOptions& options) {
    options.task_timeout_slack_ms = kSlackMs;
    options.advance_time_us = 200'000;     // fine-grained log time
    options.worker_ttl_us = 3600'000'000;  // worker 5 is never lost here
  });
  cluster.StartAll();
  cluster.ElectLeader();
  cluster.Settle();
  Host& host = cluster.host(kN1);
  SubmitAndSettle(cluster, kN1, CommandRequest(RegisterWorkerCommand(5), 3, 1));
  SubmitAndSettle(cluster, kN1, CommandRequest(SubmitTaskCommand("t1", 1), 3, 2));
  const cluster::TaskRecord* task = host.state_machine().FindTask("t1");
  ASSERT_NE(task, nullptr);
  ASSERT_EQ(task->state(), cluster::TASK_ASSIGNED);
  ASSERT_EQ(task->worker_id(), 5u);
  cluster::Command started;
  started.mutable_task_started()->set_task_id("t1");
  started.mutable_task_started()->set_worker_id(5);
  started.mutable_task_started()->set_attempt(1);
  SubmitAndSettle(cluster, kN1, CommandRequest(started, 3, 3));
  ASSERT_EQ(host.state_machine().FindTask("t1")->state(), cluster::TASK_RUNNING);
  const uint64_t deadline_ms =
      host.state_machine().FindTask("t1")->assigned_time_ms() + 1000 + kSlackMs;

  for (int tick = 0; tick < 100; ++tick) {
    cluster.AdvanceBy(kTestTickUs);
    if (host.state_machine().FindTask("t1")->state() != cluster::TASK_RUNNING) break;
  }
  EXPECT_EQ(host.state_machine().FindTask("t1")->state(), cluster::TASK_TIMED_OUT);
  const std::vector<cluster::Command> commands = CommandsWritten(cluster.node(kN1).store());
  size_t declared = 0;
  for (const cluster::Command& command : commands) {
    if (!command.has_task_finished()) continue;
    ++declared;
    EXPECT_TRUE(command.task_finished().result().timed_out());
    EXPECT_GE(command.log_time_ms(), deadline_ms) << "declared before timeout + slack";
  }
  EXPECT_EQ(declared, 1u);
  EXPECT_LE(host.state_machine().FindTask("t1")->finished_time_ms(), deadline_ms + 1000);
}

// ---------------------------------------------------------------------------
// 7. The agent.

TEST(HostAgentTest, WorkerRegistersStartsItsTaskOnceAndReportsTheExit) {
  TestCluster cluster({kN1}, [](HostOptions& options) {
    cluster::RegisterWorker worker;
    worker.set_address("10.0.0.1");
    worker.mutable_capacity()->set_cpu_cores(4);
    worker.mutable_capacity()->set_memory_mb(1024);
    worker.mutable_capacity()->set_disk_gb(10);
    options.worker = worker;
  });
  cluster.StartAll();
  cluster.ElectLeader();
  Host& host = cluster.host(kN1);
  testing::ScriptedExecutor& executor = cluster.node(kN1).executor();
  cluster.AdvanceBy(2'000'000);
  const cluster::WorkerRecord* me = host.state_machine().FindWorker(1);
  ASSERT_NE(me, nullptr) << "the node did not register itself";
  EXPECT_EQ(me->capacity().cpu_cores(), 4u);
  EXPECT_EQ(
      CountCommands(DurableCommands(cluster.node(kN1).store()), cluster::Command::kRegisterWorker),
      1u);

  SubmitAndSettle(cluster, kN1, CommandRequest(SubmitTaskCommand("t1", 0), 3, 1));
  ASSERT_EQ(host.state_machine().FindTask("t1")->worker_id(), 1u);
  cluster.AdvanceBy(2'000'000);
  ASSERT_EQ(executor.StartsOf(WorkKind::kTask, "t1"), 1u);
  const testing::ScriptedExecutor::Call& call = executor.calls().front();
  EXPECT_EQ(call.spec.command, "echo");
  EXPECT_EQ(call.spec.args, std::vector<std::string>{"hello"});

  executor.EmitRunning(WorkKind::kTask, "t1");
  cluster.AdvanceBy(2'000'000);
  EXPECT_EQ(host.state_machine().FindTask("t1")->state(), cluster::TASK_RUNNING);

  executor.EmitExit(WorkKind::kTask, "t1", WorkEvent::Reason::kFinished, 0, "hello\n", 250'000);
  cluster.AdvanceBy(2'000'000);
  const cluster::TaskRecord* task = host.state_machine().FindTask("t1");
  EXPECT_EQ(task->state(), cluster::TASK_SUCCEEDED);
  EXPECT_EQ(task->result().exit_code(), 0);
  EXPECT_EQ(task->result().output_tail(), "hello\n");
  EXPECT_EQ(task->result().execution_time_ms(), 250u);
  const std::vector<cluster::Command> commands = DurableCommands(cluster.node(kN1).store());
  EXPECT_EQ(CountCommands(commands, cluster::Command::kTaskFinished), 1u);
  EXPECT_EQ(executor.StartsOf(WorkKind::kTask, "t1"), 1u) << "started twice";
}

}  // namespace
}  // namespace blixard::host
