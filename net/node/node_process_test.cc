// Real `blixard node` processes on 127.0.0.1 (ARCHITECTURE.md, "Testing the
// real thing"): they elect a leader, stop gracefully on SIGTERM with exit 0,
// start again on the same data, survive the leader's SIGKILL, and refuse a
// data dir of another cluster with exit 2. Every wait is bounded; only the
// processes the test started are signalled, by pid.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "net/testing/process_cluster.h"

namespace blixard::net {
namespace {

using std::chrono::seconds;
using testing::ProcessCluster;
using testing::ProcessClusterOptions;

ProcessClusterOptions Options(const std::string& name) {
  ProcessClusterOptions options;
  const char* binary = std::getenv("BLIXARD_BIN");
  options.binary = binary != nullptr ? binary : "cli/blixard";
  const char* tmp = std::getenv("TEST_TMPDIR");
  options.base_dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  options.token = name;
  return options;
}

// The node whose log says it became leader most recently, or 0.
int LeaderByLog(const ProcessCluster& cluster, int nodes, int skip = 0) {
  for (int id = 1; id <= nodes; ++id) {
    if (id != skip && cluster.running(id) &&
        cluster.Log(id).find("became leader in term") != std::string::npos) {
      return id;
    }
  }
  return 0;
}

int WaitForLeader(const ProcessCluster& cluster, int nodes, int skip = 0) {
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (const int leader = LeaderByLog(cluster, nodes, skip); leader != 0) return leader;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

TEST(NodeProcessTest, ElectStopGracefullyRestartAndSurviveTheLeadersKill) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProcessCluster> cluster,
                       ProcessCluster::Create(Options("lifecycle")));
  ASSERT_OK(cluster->StartAll());
  const int leader = WaitForLeader(*cluster, 3);
  ASSERT_NE(leader, 0) << "no leader within 30 s";

  // SIGTERM: every node stops gracefully, exit 0.
  for (int id = 1; id <= 3; ++id) cluster->Signal(id, SIGTERM);
  for (int id = 1; id <= 3; ++id) {
    ASSERT_OK_AND_ASSIGN(const int status, cluster->Wait(id, seconds(20)));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "node " << id << " status " << status << "\n" << cluster->Log(id);
    EXPECT_NE(cluster->Log(id).find("stopped"), std::string::npos);
  }

  // The same data dirs again: a cluster again, from the stores (the logs
  // are appended to, so look for the second start).
  ASSERT_OK(cluster->StartAll());
  for (int id = 1; id <= 3; ++id) {
    EXPECT_TRUE(cluster->WaitForLog(id, "started: term 2", seconds(20)))
        << "node " << id << " did not recover its term\n" << cluster->Log(id);
  }

  // SIGKILL the node that leads now; the other two elect a leader.
  int current = 0;
  for (int id = 1; id <= 3 && current == 0; ++id) {
    if (cluster->WaitForLog(id, "became leader in term 3", seconds(1)) ||
        cluster->Log(id).find("became leader in term 4") != std::string::npos) {
      current = id;
    }
  }
  if (current == 0) current = WaitForLeader(*cluster, 3);
  ASSERT_NE(current, 0);
  cluster->Signal(current, SIGKILL);
  ASSERT_OK(cluster->Wait(current, seconds(10)).status());
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  bool elected = false;
  while (!elected && std::chrono::steady_clock::now() < deadline) {
    for (int id = 1; id <= 3; ++id) {
      if (id == current) continue;
      const std::string log = cluster->Log(id);
      // A leader in a term after the one the killed node led.
      for (int term = 4; term < 20 && !elected; ++term) {
        elected = log.find(absl::StrCat("became leader in term ", term, ";")) != std::string::npos;
      }
    }
    if (!elected) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(elected) << "no new leader after the leader was killed";
  // The killed node starts again and follows.
  ASSERT_OK(cluster->Start(current));
  EXPECT_TRUE(cluster->WaitForLog(current, "became follower", seconds(20)));
}

TEST(NodeProcessTest, ADataDirOfAnotherClusterIsRefusedWithExit2) {
  ProcessClusterOptions options = Options("refusal");
  options.nodes = 1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProcessCluster> cluster,
                       ProcessCluster::Create(options));
  ASSERT_OK(cluster->Start(1));
  ASSERT_TRUE(cluster->WaitForLog(1, "became leader in term", seconds(30)))
      << cluster->Log(1);
  cluster->Signal(1, SIGTERM);
  ASSERT_OK(cluster->Wait(1, seconds(20)).status());
  // Node 1 again on the same dir, told another cluster token.
  ASSERT_OK(cluster->Start(1, {"--cluster_token=someone-else"}));
  ASSERT_OK_AND_ASSIGN(const int status, cluster->Wait(1, seconds(20)));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
  EXPECT_NE(cluster->Log(1).find("belongs to cluster"), std::string::npos) << cluster->Log(1);
}

}  // namespace
}  // namespace blixard::net
