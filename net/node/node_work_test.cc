// Real work on a real cluster (issue 15): three `blixard node` processes
// register as workers with the capacity they detect, run tasks as
// processes and report their results through Raft. The seed's usage
// example (`echo hello` ends SUCCEEDED with exit code 0 and output
// "hello") holds, and its result is still there after every node is
// restarted; a task that exits 3 is FAILED with exit code 3 after its
// attempts; a program that does not exist is FAILED with the reason.
// Every wait is bounded; only the processes the test started are
// signalled, by pid.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"
#include "gtest/gtest.h"
#include "net/api/client.h"
#include "net/testing/process_cluster.h"

namespace blixard::net {
namespace {

using std::chrono::seconds;
using testing::ClientFor;
using testing::ProcessCluster;
using testing::ProcessClusterOptions;

class NodeWorkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Each test its own cluster: data dirs are never shared between tests.
    ProcessClusterOptions options = testing::TestClusterOptions(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_OK_AND_ASSIGN(cluster_, ProcessCluster::Create(std::move(options)));
    ASSERT_OK(cluster_->StartAll());
    client_ = ClientFor(cluster_->endpoints());
  }

  // The workers the cluster knows, once `n` of them are ONLINE (bounded).
  std::vector<cluster::WorkerRecord> WaitForWorkers(size_t n) {
    std::vector<cluster::WorkerRecord> online;
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      api::ClientRequest request;
      request.mutable_query()->mutable_list_workers();
      absl::StatusOr<api::ClientResponse> response = client_->Call(request);
      online.clear();
      if (response.ok() && response->status() == api::ClientResponse::STATUS_OK) {
        for (const cluster::WorkerRecord& w : response->query_result().workers()) {
          if (w.status() == cluster::WORKER_ONLINE) online.push_back(w);
        }
      }
      if (online.size() >= n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return online;
  }

  void Submit(const std::string& id, const std::string& command, std::vector<std::string> args,
              uint32_t max_attempts = 1, uint64_t timeout_secs = 60) {
    api::ClientRequest request;
    cluster::SubmitTask* submit = request.mutable_command()->mutable_submit_task();
    submit->set_task_id(id);
    cluster::TaskSpec* spec = submit->mutable_spec();
    spec->set_command(command);
    for (std::string& arg : args) spec->add_args(std::move(arg));
    spec->mutable_resources()->set_cpu_cores(1);
    spec->mutable_resources()->set_memory_mb(1024);
    spec->mutable_resources()->set_disk_gb(1);
    spec->set_timeout_secs(timeout_secs);
    spec->set_max_attempts(max_attempts);
    absl::StatusOr<api::ClientResponse> response = client_->Call(request);
    ASSERT_OK(response.status());
    ASSERT_EQ(response->status(), api::ClientResponse::STATUS_OK) << response->error();
    ASSERT_EQ(response->result().code(), cluster::RESULT_OK) << response->result().message();
  }

  std::optional<cluster::TaskRecord> Get(const std::string& id) {
    api::ClientRequest request;
    request.mutable_query()->set_get_task(id);
    absl::StatusOr<api::ClientResponse> response = client_->Call(request);
    if (!response.ok() || response->status() != api::ClientResponse::STATUS_OK ||
        response->query_result().tasks_size() != 1) {
      return std::nullopt;
    }
    return response->query_result().tasks(0);
  }

  // The task once it is RUNNING (bounded: 30 s), or nullopt.
  std::optional<cluster::TaskRecord> WaitRunning(const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<cluster::TaskRecord> task = Get(id);
      if (task && task->state() == cluster::TASK_RUNNING) return task;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::nullopt;
  }

  // The task once it is SUCCEEDED, FAILED, TIMED_OUT or CANCELLED (bounded).
  cluster::TaskRecord WaitFinished(const std::string& id, seconds timeout = seconds(60)) {
    std::optional<cluster::TaskRecord> task;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      task = Get(id);
      if (task && (task->state() == cluster::TASK_SUCCEEDED ||
                   task->state() == cluster::TASK_FAILED ||
                   task->state() == cluster::TASK_TIMED_OUT ||
                   task->state() == cluster::TASK_CANCELLED)) {
        return *task;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return task.value_or(cluster::TaskRecord());
  }

  std::unique_ptr<ProcessCluster> cluster_;
  std::unique_ptr<Client> client_;
};

TEST_F(NodeWorkTest, EchoHelloSucceedsAndItsResultSurvivesARestartOfEveryNode) {
  const std::vector<cluster::WorkerRecord> workers = WaitForWorkers(3);
  ASSERT_EQ(workers.size(), 3u) << "every node registers as a worker";
  for (const cluster::WorkerRecord& w : workers) {
    EXPECT_GE(w.capacity().cpu_cores(), 1u);
    EXPECT_GE(w.capacity().memory_mb(), 1024u);
    EXPECT_FALSE(w.address().empty());
  }
  Submit("task-1", "echo", {"hello"});
  const cluster::TaskRecord done = WaitFinished("task-1");
  ASSERT_EQ(done.state(), cluster::TASK_SUCCEEDED) << done.DebugString();
  EXPECT_EQ(done.result().exit_code(), 0);
  EXPECT_EQ(done.result().output_tail(), "hello\n");

  // SIGTERM every node, start them all again: the result is still there.
  for (int id = 1; id <= 3; ++id) cluster_->Signal(id, SIGTERM);
  for (int id = 1; id <= 3; ++id) {
    ASSERT_OK_AND_ASSIGN(const int status, cluster_->Wait(id, seconds(30)));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cluster_->Log(id);
  }
  ASSERT_OK(cluster_->StartAll());
  client_ = ClientFor(cluster_->endpoints());
  const cluster::TaskRecord after = WaitFinished("task-1");
  EXPECT_EQ(after.state(), cluster::TASK_SUCCEEDED) << after.DebugString();
  EXPECT_EQ(after.result().exit_code(), 0);
  EXPECT_EQ(after.result().output_tail(), "hello\n");
  EXPECT_EQ(after.attempt(), 1u) << "ran once";
}

// The seed's usage example, typed as a user would: `blixard task submit
// --id task-1 --cpu 1 --memory_mb 1024 --disk_gb 10 -- echo hello`.
TEST_F(NodeWorkTest, TheSeedsExampleThroughTheCli) {
  ASSERT_EQ(WaitForWorkers(3).size(), 3u);
  const std::string endpoints = absl::StrCat("--endpoints=", cluster_->endpoints());
  const testing::CliResult submitted = cluster_->RunCli(
      {"task", "submit", "--id", "task-1", "--cpu", "1", "--memory_mb", "1024", "--disk_gb", "10",
       "--wait", endpoints, "--", "echo", "hello"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.out << submitted.err;
  EXPECT_NE(submitted.out.find("succeeded"), std::string::npos) << submitted.out;
  EXPECT_NE(submitted.out.find("hello"), std::string::npos) << submitted.out;
  const testing::CliResult logs = cluster_->RunCli({"task", "logs", "task-1", endpoints});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_EQ(logs.out, "hello\n");
  const testing::CliResult json =
      cluster_->RunCli({"task", "get", "task-1", "--output=json", endpoints});
  EXPECT_NE(json.out.find("\"state\":\"TASK_SUCCEEDED\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"exit_code\":0"), std::string::npos) << json.out;

  // More than any worker has: refused with the reason, nothing submitted.
  const testing::CliResult huge = cluster_->RunCli(
      {"task", "submit", "--id", "huge", "--cpu", "4096", endpoints, "--", "true"});
  EXPECT_EQ(huge.exit_code, 1) << huge.out << huge.err;
  EXPECT_NE(huge.err.find("no worker can ever run it"), std::string::npos) << huge.err;
  EXPECT_FALSE(Get("huge").has_value());
}

TEST_F(NodeWorkTest, AFailingTaskIsRetriedAndAMissingProgramFailsWithTheReason) {
  ASSERT_EQ(WaitForWorkers(3).size(), 3u);
  Submit("exits-3", "sh", {"-c", "echo trying; exit 3"}, /*max_attempts=*/2);
  Submit("no-such", "/no/such/program", {});
  const cluster::TaskRecord failed = WaitFinished("exits-3", seconds(120));
  ASSERT_EQ(failed.state(), cluster::TASK_FAILED) << failed.DebugString();
  EXPECT_EQ(failed.result().exit_code(), 3);
  EXPECT_EQ(failed.failed_attempts(), 2u) << "retried up to max_attempts";
  EXPECT_EQ(failed.attempt(), 2u);
  EXPECT_NE(failed.result().output_tail().find("trying"), std::string::npos);

  const cluster::TaskRecord missing = WaitFinished("no-such");
  ASSERT_EQ(missing.state(), cluster::TASK_FAILED) << missing.DebugString();
  const std::string why = missing.result().error() + missing.result().output_tail();
  EXPECT_NE(why.find("no such program"), std::string::npos) << missing.DebugString();
  for (int id = 1; id <= 3; ++id) EXPECT_TRUE(cluster_->running(id)) << "node " << id;
}

// What only nodes send (a worker's reports, members' records) is refused
// on the client port: a client cannot forge a task's result.
TEST_F(NodeWorkTest, AClientCannotForgeWhatOnlyNodesSend) {
  ASSERT_EQ(WaitForWorkers(3).size(), 3u);
  Submit("sleeper", "sleep", {"30"});
  const std::optional<cluster::TaskRecord> task = WaitRunning("sleeper");
  ASSERT_TRUE(task.has_value()) << "sleeper never ran";
  api::ClientRequest forged;
  cluster::TaskFinished* finished = forged.mutable_command()->mutable_task_finished();
  finished->set_task_id("sleeper");
  finished->set_worker_id(task->worker_id());
  finished->mutable_result()->set_attempt(task->attempt());
  finished->mutable_result()->set_success(true);
  absl::StatusOr<api::ClientResponse> response = client_->Call(forged);
  ASSERT_OK(response.status());
  EXPECT_EQ(response->status(), api::ClientResponse::STATUS_REJECTED);
  EXPECT_NE(response->error().find("task_finished is sent by the cluster's nodes"),
            std::string::npos)
      << response->error();
  api::ClientRequest joined;
  joined.mutable_command()->mutable_member_joined()->set_node_id(9);
  joined.mutable_command()->mutable_member_joined()->set_store_nonce(5);
  response = client_->Call(joined);
  ASSERT_OK(response.status());
  EXPECT_EQ(response->status(), api::ClientResponse::STATUS_REJECTED);
  EXPECT_EQ(Get("sleeper")->state(), cluster::TASK_RUNNING) << "the forged result applied";
}

// A task past its timeout is killed with every process it started: none
// is left (checked through /proc by the pids the task wrote down).
TEST_F(NodeWorkTest, ATaskPastItsTimeoutIsKilledWithItsChildren) {
  ASSERT_EQ(WaitForWorkers(3).size(), 3u);
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string pids = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/overrun-pids");
  Submit("overrun", "sh",
         {"-c", absl::StrCat("sleep 1000 & echo $! >> ", pids, "; sleep 1000 & echo $! >> ", pids,
                             "; echo $$ >> ", pids, "; wait")},
         /*max_attempts=*/1, /*timeout_secs=*/2);
  const cluster::TaskRecord done = WaitFinished("overrun", seconds(90));
  ASSERT_EQ(done.state(), cluster::TASK_TIMED_OUT) << done.DebugString();
  EXPECT_TRUE(done.result().timed_out()) << done.DebugString();
  std::ifstream in(pids);
  std::string pid;
  int checked = 0;
  while (std::getline(in, pid)) {
    ++checked;
    // Gone, or a zombie no one reaped yet would still show: only "no such
    // process" proves the kill reached it.
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    EXPECT_FALSE(stat.good()) << "process " << pid << " of the timed-out task survived";
  }
  EXPECT_EQ(checked, 3);
}

// A worker SIGKILLed while its task runs and started again at once adopts
// the task (it is a process of its own): one result, and the task ran once
// (each run appends its pid to a file).
TEST_F(NodeWorkTest, AWorkerKilledWhileItsTaskRunsAdoptsItAndTheTaskRunsOnce) {
  ASSERT_EQ(WaitForWorkers(3).size(), 3u);
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string runs = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/adopted-runs");
  Submit("adopted", "sh", {"-c", absl::StrCat("echo $$ >> ", runs, "; sleep 3; echo done")});
  const std::optional<cluster::TaskRecord> task = WaitRunning("adopted");
  ASSERT_TRUE(task.has_value()) << "adopted never ran";
  const int worker = static_cast<int>(task->worker_id());
  cluster_->Signal(worker, SIGKILL);
  ASSERT_OK(cluster_->Wait(worker, seconds(10)).status());
  ASSERT_OK(cluster_->Start(worker));
  const cluster::TaskRecord done = WaitFinished("adopted");
  ASSERT_EQ(done.state(), cluster::TASK_SUCCEEDED) << done.DebugString() << cluster_->Log(worker);
  EXPECT_EQ(done.result().exit_code(), 0);
  EXPECT_NE(done.result().output_tail().find("done"), std::string::npos);
  EXPECT_EQ(done.attempt(), 1u) << "run again";
  std::ifstream in(runs);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 1) << "the task ran " << lines << " times";
}

}  // namespace
}  // namespace blixard::net
