// Unit tests of the Host on a scripted Env, part 3: the leader controllers
// and the worker agent (part 1, host_test.cc, has the Ready loop).
#include "core/host/host.h"

#include <algorithm>
#include <cstdint>
#include <optional>
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

// Worker 5 is a registered worker with a RUNNING task t1 (timeout 1 s) that
// never heartbeats unless the test says so; returns the log time at which
// t1's timeout plus `slack_ms` has passed.
uint64_t RunTaskOnSilentWorker(TestCluster& cluster, uint64_t slack_ms) {
  cluster.StartAll();
  cluster.ElectLeader();
  cluster.Settle();
  Host& host = cluster.host(kN1);
  SubmitAndSettle(cluster, kN1, CommandRequest(RegisterWorkerCommand(5), 3, 1));
  SubmitAndSettle(cluster, kN1, CommandRequest(SubmitTaskCommand("t1", 1), 3, 2));
  const cluster::TaskRecord* task = host.state_machine().FindTask("t1");
  EXPECT_NE(task, nullptr);
  EXPECT_EQ(task->state(), cluster::TASK_ASSIGNED);
  EXPECT_EQ(task->worker_id(), 5u);
  cluster::Command started;
  started.mutable_task_started()->set_task_id("t1");
  started.mutable_task_started()->set_worker_id(5);
  started.mutable_task_started()->set_attempt(1);
  SubmitAndSettle(cluster, kN1, CommandRequest(started, 3, 3));
  EXPECT_EQ(host.state_machine().FindTask("t1")->state(), cluster::TASK_RUNNING);
  return host.state_machine().FindTask("t1")->assigned_time_ms() + 1000 + slack_ms;
}

void SilentWorkerOptions(HostOptions& options) {
  options.task_timeout_slack_ms = 500;
  options.advance_time_us = 200'000;     // fine-grained log time
  options.worker_ttl_us = 3600'000'000;  // worker 5 is never lost here
  options.agent_fence_us = 600'000;      // fenced after 0.6 s + 4 election timeouts
}

TEST(HostControllerTest, LeaderLeavesTheTimeoutOfAWorkerItHearsToThatWorker) {
  TestCluster cluster({kN1}, SilentWorkerOptions);
  const uint64_t deadline_ms = RunTaskOnSilentWorker(cluster, 500);
  Host& host = cluster.host(kN1);
  const int64_t fenced_after_us = cluster.node(kN1).options().WorkerFencedAfterUs();
  HostMessage heartbeat;
  heartbeat.mutable_heartbeat()->set_node_id(5);
  // Worker 5 heartbeats for twice the fence time, far past t1's deadline:
  // its own Executor ends t1 and reports it, so the leader must not.
  const MonoMicros until = cluster.now() + 2 * fenced_after_us;
  MonoMicros last_heard = 0;
  while (cluster.now() < until) {
    ASSERT_TRUE(cluster.network().Inject(HostPacket(NodeId(5), kN1, heartbeat)));
    cluster.Settle();
    last_heard = cluster.now();
    cluster.AdvanceBy(500'000);
  }
  ASSERT_GT(host.state_machine().now_ms(), deadline_ms);
  EXPECT_EQ(host.state_machine().FindTask("t1")->state(), cluster::TASK_RUNNING)
      << "timed out by the leader while its worker is heard (and may still run it)";
  // Silent from the last one: declared once the worker's fence must have
  // ended the task.
  cluster.AdvanceTo(last_heard + fenced_after_us - 2 * kTestTickUs);
  EXPECT_EQ(host.state_machine().FindTask("t1")->state(), cluster::TASK_RUNNING);
  cluster.AdvanceTo(last_heard + fenced_after_us + 10 * kTestTickUs);
  EXPECT_EQ(host.state_machine().FindTask("t1")->state(), cluster::TASK_TIMED_OUT);
}

TEST(HostControllerTest, RunningTaskPastItsTimeoutPlusSlackIsDeclaredTimedOut) {
  constexpr uint64_t kSlackMs = 500;
  TestCluster cluster({kN1}, SilentWorkerOptions);
  const uint64_t deadline_ms = RunTaskOnSilentWorker(cluster, kSlackMs);
  Host& host = cluster.host(kN1);
  const int64_t fenced_after_us = cluster.node(kN1).options().WorkerFencedAfterUs();
  // The leader has not heard worker 5 since it registered.
  std::optional<uint64_t> registered_ms;
  for (const cluster::Command& command : CommandsWritten(cluster.node(kN1).store())) {
    if (command.has_register_worker()) registered_ms = command.log_time_ms();
  }
  ASSERT_TRUE(registered_ms.has_value());
  const uint64_t silent_from_ms = *registered_ms;

  for (int tick = 0; tick < 200; ++tick) {
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
    EXPECT_GE(command.log_time_ms(),
              silent_from_ms + static_cast<uint64_t>(fenced_after_us / kMicrosPerMilli))
        << "declared before the silent worker's fence had ended the task";
  }
  EXPECT_EQ(declared, 1u);
  EXPECT_LE(host.state_machine().FindTask("t1")->finished_time_ms(),
            std::max(deadline_ms, silent_from_ms + static_cast<uint64_t>(fenced_after_us /
                                                                         kMicrosPerMilli)) +
                1000);
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


// A task that exits between two of the agent's heartbeats: its result
// waits to be reported while the log still says RUNNING, and the agent's
// next pass must not take the task for one lost to a restart (it did, and
// reported exit -1 "worker restarted while the task ran" over the real
// result). Exits land at every phase of the heartbeat period.
TEST(HostAgentTest, AResultWaitingForTheNextHeartbeatIsNotReportedAsLost) {
  TestCluster cluster({kN1}, [](HostOptions& options) {
    cluster::RegisterWorker worker;
    worker.set_address("10.0.0.1");
    worker.mutable_capacity()->set_cpu_cores(8);
    worker.mutable_capacity()->set_memory_mb(1024);
    worker.mutable_capacity()->set_disk_gb(10);
    options.worker = worker;
  });
  cluster.StartAll();
  cluster.ElectLeader();
  cluster.AdvanceBy(2'000'000);
  const int kTasks = 6;  // agent_heartbeat_us / tick + 1
  for (int i = 0; i < kTasks; ++i) {
    SubmitAndSettle(cluster, kN1,
                    CommandRequest(SubmitTaskCommand(absl::StrCat("t", i), 0), 3,
                                   static_cast<uint64_t>(i + 1)));
  }
  cluster.AdvanceBy(2'000'000);
  testing::ScriptedExecutor& executor = cluster.node(kN1).executor();
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_EQ(executor.StartsOf(WorkKind::kTask, absl::StrCat("t", i)), 1u);
    executor.EmitRunning(WorkKind::kTask, absl::StrCat("t", i));
  }
  cluster.AdvanceBy(2'000'000);
  for (int i = 0; i < kTasks; ++i) {
    executor.EmitExit(WorkKind::kTask, absl::StrCat("t", i), WorkEvent::Reason::kFinished, 0,
                      "hello\n", 1000);
    cluster.AdvanceBy(kTestTickUs);
  }
  cluster.AdvanceBy(3'000'000);
  for (int i = 0; i < kTasks; ++i) {
    const cluster::TaskRecord* task = cluster.host(kN1).state_machine().FindTask(absl::StrCat("t", i));
    ASSERT_NE(task, nullptr);
    EXPECT_EQ(task->state(), cluster::TASK_SUCCEEDED) << task->DebugString();
    EXPECT_EQ(task->result().exit_code(), 0) << task->result().error();
  }
}

// A three-node cluster where only `worker` (not the leader) is a worker,
// with a one-attempt task t1 assigned to it. Returns the leader.
NodeId AssignTaskToFollowerWorker(TestCluster& cluster, NodeId worker) {
  cluster.StartAll();
  NodeId leader = cluster.ElectLeader();
  if (leader == worker) {
    const NodeId other = worker == kN1 ? NodeId(2) : kN1;
    EXPECT_TRUE(cluster.host(leader).TransferLeader(other));
    for (int i = 0; i < 100 && !cluster.host(other).is_leader(); ++i) {
      cluster.AdvanceBy(kTestTickUs);
    }
    leader = other;
  }
  EXPECT_TRUE(cluster.host(leader).is_leader());
  cluster.AdvanceBy(2'000'000);  // the worker registers
  EXPECT_NE(cluster.host(leader).state_machine().FindWorker(worker.value()), nullptr);
  SubmitAndSettle(cluster, leader, CommandRequest(SubmitTaskCommand("t1", 0), 3, 1));
  const cluster::TaskRecord* task = cluster.host(leader).state_machine().FindTask("t1");
  EXPECT_NE(task, nullptr);
  if (task != nullptr) EXPECT_EQ(task->worker_id(), worker.value());
  return leader;
}

void OnlyNode2IsAWorker(HostOptions& options) {
  options.agent_fence_us = 2'000'000;
  if (options.id != NodeId(2)) return;
  cluster::RegisterWorker worker;
  worker.set_address("10.0.0.2");
  worker.mutable_capacity()->set_cpu_cores(4);
  worker.mutable_capacity()->set_memory_mb(1024);
  worker.mutable_capacity()->set_disk_gb(10);
  options.worker = worker;
}

TEST(HostAgentTest, ATaskStartsOnlyOnceTheLogHoldsTheWorkersClaimOnIt) {
  const NodeId kWorker(2);
  TestCluster cluster({kN1, kWorker, NodeId(3)}, OnlyNode2IsAWorker);
  const NodeId leader = AssignTaskToFollowerWorker(cluster, kWorker);
  testing::ScriptedExecutor& executor = cluster.node(kWorker).executor();
  // The worker's claim (a forwarded TaskStarted) is held on the wire: the
  // worker knows t1 is ASSIGNED to it, but the log has not confirmed that
  // this attempt is still current, so nothing may start. (A lagging node
  // that started from its stale view ran an attempt the log had moved on.)
  const testing::PacketPredicate from_worker = [&](const Packet& packet) {
    return packet.from == kWorker && packet.kind == Packet::Kind::kBytes;
  };
  cluster.AdvanceBy(1'000'000, from_worker);  // within the fence time
  ASSERT_EQ(cluster.host(kWorker).state_machine().FindTask("t1")->state(),
            cluster::TASK_ASSIGNED);
  EXPECT_EQ(executor.StartsOf(WorkKind::kTask, "t1"), 0u)
      << "started before the log confirmed the claim";
  cluster.AdvanceBy(2'000'000);  // the claim lands
  EXPECT_EQ(cluster.host(leader).state_machine().FindTask("t1")->state(), cluster::TASK_RUNNING);
  EXPECT_EQ(executor.StartsOf(WorkKind::kTask, "t1"), 1u);
  executor.EmitRunning(WorkKind::kTask, "t1");
  cluster.AdvanceBy(2'000'000);
  EXPECT_EQ(executor.StartsOf(WorkKind::kTask, "t1"), 1u) << "started twice";
}

TEST(HostAgentTest, AWorkerCutOffFromTheLeadersAcksStopsItsTasksAndSaysWhy) {
  const NodeId kWorker(2);
  TestCluster cluster({kN1, kWorker, NodeId(3)}, OnlyNode2IsAWorker);
  const NodeId leader = AssignTaskToFollowerWorker(cluster, kWorker);
  testing::ScriptedExecutor& executor = cluster.node(kWorker).executor();
  cluster.AdvanceBy(2'000'000);
  ASSERT_EQ(executor.StartsOf(WorkKind::kTask, "t1"), 1u);
  executor.EmitRunning(WorkKind::kTask, "t1");
  cluster.AdvanceBy(1'000'000);
  ASSERT_FALSE(cluster.host(kWorker).agent_fenced());

  // The leader's answers to the worker's heartbeats are lost (Raft still
  // flows both ways, and the leader still hears the heartbeats).
  const testing::PacketPredicate acks = [&](const Packet& packet) {
    return packet.from == leader && packet.to == kWorker && packet.kind == Packet::Kind::kBytes;
  };
  const int64_t fence_us = cluster.node(kWorker).options().agent_fence_us;
  const MonoMicros cut_at = cluster.now();
  cluster.AdvanceTo(cut_at + fence_us - 1'000'000, nullptr, acks);
  EXPECT_EQ(executor.StopsOf(WorkKind::kTask, "t1"), 0u) << "stopped before the fence time";
  cluster.AdvanceTo(cut_at + fence_us + 500'000, nullptr, acks);
  EXPECT_TRUE(cluster.host(kWorker).agent_fenced());
  EXPECT_EQ(executor.StopsOf(WorkKind::kTask, "t1"), 1u) << "the fence did not stop the task";

  // An ack for another process of the node, or for a time this one never
  // sent, does not lift the fence.
  HostMessage forged;
  forged.mutable_heartbeat_ack()->set_sent_us(cluster.now());
  forged.mutable_heartbeat_ack()->set_incarnation(
      cluster.node(kWorker).options().raft_seed + 1);
  ASSERT_TRUE(cluster.network().Inject(HostPacket(leader, kWorker, forged)));
  forged.mutable_heartbeat_ack()->set_incarnation(cluster.node(kWorker).options().raft_seed);
  forged.mutable_heartbeat_ack()->set_sent_us(cluster.now() + 1'000'000);
  ASSERT_TRUE(cluster.network().Inject(HostPacket(leader, kWorker, forged)));
  cluster.Settle(nullptr, acks);
  cluster.AdvanceBy(kTestTickUs, nullptr, acks);
  EXPECT_TRUE(cluster.host(kWorker).agent_fenced()) << "a forged ack lifted the fence";

  executor.EmitExit(WorkKind::kTask, "t1", WorkEvent::Reason::kStopped, 143);
  cluster.AdvanceBy(3'000'000);  // acks flow again
  EXPECT_FALSE(cluster.host(kWorker).agent_fenced());
  const cluster::TaskRecord* task = cluster.host(leader).state_machine().FindTask("t1");
  EXPECT_EQ(task->state(), cluster::TASK_FAILED);
  EXPECT_NE(task->result().error().find("fence"), std::string::npos) << task->result().error();
  EXPECT_EQ(executor.StartsOf(WorkKind::kTask, "t1"), 1u);
}

}  // namespace
}  // namespace blixard::host
