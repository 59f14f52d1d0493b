// Real `blixard node` processes on 127.0.0.1 (ARCHITECTURE.md, "Testing the
// real thing"): they elect a leader, stop gracefully on SIGTERM with exit 0,
// start again on the same data, survive the leader's SIGKILL, and refuse a
// data dir of another cluster with exit 2. Every wait is bounded; only the
// processes the test started are signalled, by pid.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/base/check.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"
#include "net/api/client.h"
#include "net/api/put_bench.h"
#include "net/testing/process_cluster.h"

namespace blixard::net {
namespace {

using std::chrono::seconds;
using net::Client;
using net::ClientOptions;
using net::PutBenchOptions;
using net::PutBenchResult;
using net::SocketAddress;
using testing::ClientFor;
using testing::ProcessCluster;
using testing::ProcessClusterOptions;


struct Leadership {
  int id = 0;
  uint64_t term = 0;
};

// The highest term any running node's log says it became leader in.
Leadership LatestLeader(const ProcessCluster& cluster, int nodes) {
  Leadership best;
  const std::string kMark = "became leader in term ";
  for (int id = 1; id <= nodes; ++id) {
    if (!cluster.running(id)) continue;
    const std::string log = cluster.Log(id);
    for (size_t at = log.find(kMark); at != std::string::npos; at = log.find(kMark, at + 1)) {
      const uint64_t term = std::strtoull(log.c_str() + at + kMark.size(), nullptr, 10);
      if (term > best.term) best = Leadership{id, term};
    }
  }
  return best;
}

// Waits (bounded) for a leader in a term above `above`.
Leadership WaitForLeader(const ProcessCluster& cluster, int nodes, uint64_t above = 0) {
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    const Leadership leader = LatestLeader(cluster, nodes);
    if (leader.term > above) return leader;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Leadership{};
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(NodeProcessTest, ElectStopGracefullyRestartAndSurviveTheLeadersKill) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProcessCluster> cluster,
                       ProcessCluster::Create(testing::TestClusterOptions("lifecycle")));
  ASSERT_OK(cluster->StartAll());
  const Leadership first = WaitForLeader(*cluster, 3);
  ASSERT_NE(first.id, 0) << "no leader within 30 s";

  // SIGTERM: every node stops gracefully, exit 0.
  for (int id = 1; id <= 3; ++id) cluster->Signal(id, SIGTERM);
  for (int id = 1; id <= 3; ++id) {
    ASSERT_OK_AND_ASSIGN(const int status, cluster->Wait(id, seconds(20)));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "node " << id << " status " << status << "\n" << cluster->Log(id);
    EXPECT_NE(cluster->Log(id).find("stopped"), std::string::npos);
  }

  // The same data dirs again (the logs are appended to): each node
  // recovers its store, and they elect a leader in a later term.
  ASSERT_OK(cluster->StartAll());
  const Leadership second = WaitForLeader(*cluster, 3, first.term);
  ASSERT_NE(second.id, 0) << "no leader after the restart";
  for (int id = 1; id <= 3; ++id) {
    EXPECT_EQ(Count(cluster->Log(id), "started: term "), 2u) << cluster->Log(id);
    EXPECT_EQ(Count(cluster->Log(id), "started: term 0"), 0u) << "node " << id << " lost its term";
  }

  // SIGKILL that leader; the other two elect one in a later term.
  cluster->Signal(second.id, SIGKILL);
  ASSERT_OK(cluster->Wait(second.id, seconds(10)).status());
  const Leadership third = WaitForLeader(*cluster, 3, second.term);
  ASSERT_NE(third.id, 0) << "no new leader after the leader was killed";
  EXPECT_NE(third.id, second.id);
  // The killed node starts again and follows.
  ASSERT_OK(cluster->Start(second.id));
  EXPECT_TRUE(cluster->WaitForLog(second.id, "became follower", seconds(20)));
}

api::ClientRequest PutRequest(const std::string& key, const std::string& value) {
  api::ClientRequest request;
  request.mutable_command()->mutable_kv_put()->set_key(key);
  request.mutable_command()->mutable_kv_put()->set_value(value);
  return request;
}

// The value of `key` as read through `client`, or what went wrong.
std::string Get(Client& client, const std::string& key) {
  api::ClientRequest request;
  request.mutable_query()->set_kv_get(key);
  absl::StatusOr<api::ClientResponse> response = client.Call(std::move(request));
  if (!response.ok()) return absl::StrCat("error: ", response.status().ToString());
  if (response->status() != api::ClientResponse::STATUS_OK) return "error: " + response->error();
  if (response->query_result().code() != cluster::RESULT_OK) {
    return "error: " + response->query_result().message();
  }
  return response->query_result().kv().value();
}

// Waits (bounded) until node `id` has applied the leader's commit index.
bool WaitCaughtUp(Client& client, int id) {
  const auto deadline = std::chrono::steady_clock::now() + seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    uint64_t commit = 0, applied = 0;
    for (size_t i = 0; i < client.endpoint_count(); ++i) {
      absl::StatusOr<api::NodeStatus> status = client.NodeStatusAt(i);
      if (!status.ok()) continue;
      if (status->role() == api::NodeStatus::ROLE_LEADER) commit = status->commit_index();
      if (status->node_id() == static_cast<uint64_t>(id)) applied = status->applied_index();
    }
    if (commit > 0 && applied >= commit) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(NodeProcessTest, AcknowledgedWritesSurviveTheLeadersKillAndAreReadableEverywhere) {
  constexpr int kWrites = 1000;
  constexpr int kClients = 4;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProcessCluster> cluster,
                       ProcessCluster::Create(testing::TestClusterOptions("writes")));
  ASSERT_OK(cluster->StartAll());
  // Several clients (each its own session), their writes interleaved.
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(ClientFor(cluster->endpoints()));
  int acknowledged = 0;
  for (int i = 0; i < kWrites; ++i) {
    absl::StatusOr<api::ClientResponse> response = clients[static_cast<size_t>(i % kClients)]->Call(
        PutRequest(absl::StrCat("key", i), absl::StrCat("value", i)));
    ASSERT_OK(response.status()) << "write " << i;
    ASSERT_EQ(response->status(), api::ClientResponse::STATUS_OK) << response->error();
    ASSERT_EQ(response->result().code(), cluster::RESULT_OK) << response->result().message();
    ++acknowledged;
  }
  // Readable through every endpoint (a follower forwards the read).
  for (int id = 1; id <= 3; ++id) {
    std::unique_ptr<Client> reader = ClientFor(cluster->endpoint(id));
    for (int i = 0; i < kWrites; i += 97) {
      EXPECT_EQ(Get(*reader, absl::StrCat("key", i)), absl::StrCat("value", i)) << "via n" << id;
    }
  }
  // SIGKILL the leader: a new one, and no acknowledged write lost.
  const Leadership leader = LatestLeader(*cluster, 3);
  ASSERT_NE(leader.id, 0);
  cluster->Signal(leader.id, SIGKILL);
  ASSERT_OK(cluster->Wait(leader.id, seconds(10)).status());
  std::vector<std::string> survivors;
  for (int id = 1; id <= 3; ++id) {
    if (id != leader.id) survivors.push_back(cluster->endpoint(id));
  }
  std::unique_ptr<Client> after = ClientFor(absl::StrJoin(survivors, ","));
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_EQ(Get(*after, absl::StrCat("key", i)), absl::StrCat("value", i))
        << "acknowledged write " << i << " lost after the leader's kill";
  }
  // Closed-loop load on the new leader (what `blixard bench put` runs):
  // every put acknowledged, one latency each.
  const std::optional<SocketAddress> leader_address = after->FindLeader();
  ASSERT_TRUE(leader_address.has_value());
  PutBenchOptions bench;
  bench.endpoint = *leader_address;
  bench.clients = 8;
  bench.ops = 400;
  bench.timeout_us = 60 * kMicrosPerSecond;
  ASSERT_OK_AND_ASSIGN(const PutBenchResult result, RunPutBench(bench));
  EXPECT_EQ(result.ok, 400u);
  EXPECT_EQ(result.failed, 0u) << result.first_error;
  ASSERT_EQ(result.latencies_us.size(), 400u);
  EXPECT_TRUE(std::is_sorted(result.latencies_us.begin(), result.latencies_us.end()));
  EXPECT_LE(Percentile(result.latencies_us, 50), Percentile(result.latencies_us, 99.9));

  // The killed node restarts and catches up with the leader's commit.
  ASSERT_OK(cluster->Start(leader.id));
  std::unique_ptr<Client> all = ClientFor(cluster->endpoints());
  const bool caught_up = WaitCaughtUp(*all, leader.id);
  EXPECT_TRUE(caught_up) << "the restarted node did not catch up";
  EXPECT_EQ(acknowledged, kWrites);
}

// Runs `load` against the leader; when leadership moves during the run
// (a loaded two-node cluster may hold an election), finds the new leader
// and runs the rest there. Bounded: a few leader changes at most.
absl::StatusOr<PutBenchResult> LoadOnLeader(Client& client, PutBenchOptions load) {
  PutBenchResult total;
  for (int attempt = 0; attempt < 5 && total.ok < load.ops; ++attempt) {
    std::optional<SocketAddress> leader;
    for (int probe = 0; probe < 100 && !leader; ++probe) {
      leader = client.FindLeader();
      if (!leader) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!leader) return absl::UnavailableError("no leader");
    PutBenchOptions rest = load;
    rest.endpoint = *leader;
    rest.ops = std::max<uint64_t>(load.ops - total.ok, static_cast<uint64_t>(load.clients));
    rest.seed = load.seed + static_cast<uint64_t>(attempt);
    absl::StatusOr<PutBenchResult> run = RunPutBench(rest);
    if (!run.ok()) {
      if (absl::IsUnavailable(run.status())) continue;  // leadership moved
      return run.status();
    }
    total.ok += run->ok;
    total.failed += run->failed;
    if (total.first_error.empty()) total.first_error = run->first_error;
  }
  return total;
}

// A follower stopped while the cluster grows past 64 MiB of state and
// compacts its log comes back through a streamed snapshot, while the leader
// goes on serving writes.
TEST(NodeProcessTest, ALaggingNodeCatchesUpThroughA64MiBSnapshotWhileTheLeaderServesWrites) {
  const std::vector<std::string> flags = {"--snapshot_interval=250", "--log_retain=20"};
  ProcessClusterOptions options = testing::TestClusterOptions("snapshot");
  options.tick_ms = 100;  // elections after 1-2 s: fewer under this load
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProcessCluster> cluster,
                       ProcessCluster::Create(options));
  for (int id = 1; id <= 3; ++id) ASSERT_OK(cluster->Start(id, flags));
  const Leadership leader = WaitForLeader(*cluster, 3);
  ASSERT_NE(leader.id, 0);
  const int lagging = leader.id == 3 ? 2 : 3;
  cluster->Signal(lagging, SIGTERM);
  ASSERT_OK(cluster->Wait(lagging, seconds(20)).status());

  std::unique_ptr<Client> client = ClientFor(cluster->endpoints());
  // 1,300 values of 64 KiB: the snapshot taken last (every 250 entries)
  // holds over 64 MiB.
  PutBenchOptions load;
  load.clients = 8;
  load.ops = 1300;
  load.value_bytes = 64 * 1024;
  load.timeout_us = 240 * kMicrosPerSecond;
  ASSERT_OK_AND_ASSIGN(PutBenchResult loaded, LoadOnLeader(*client, load));
  ASSERT_GE(loaded.ok, 1300u) << loaded.first_error;

  // Back, far behind a compacted log; more writes while it catches up.
  ASSERT_OK(cluster->Start(lagging, flags));
  PutBenchOptions more = load;
  more.ops = 400;
  more.value_bytes = 1024;
  ASSERT_OK_AND_ASSIGN(PutBenchResult served, LoadOnLeader(*client, more));
  EXPECT_GE(served.ok, 400u) << served.first_error;
  ASSERT_TRUE(cluster->WaitForLog(lagging, "received the snapshot at index", seconds(120)))
      << cluster->Log(lagging);
  const std::string log = cluster->Log(lagging);
  const size_t at = log.find("received the snapshot at index");
  const size_t open = log.find('(', at);
  const uint64_t bytes = std::strtoull(log.c_str() + open + 1, nullptr, 10);
  EXPECT_GE(bytes, uint64_t{64} << 20) << log.substr(at, 120);
  // It catches up with the leader's commit.
  const bool caught_up = WaitCaughtUp(*client, lagging);
  EXPECT_TRUE(caught_up) << "node " << lagging << " did not catch up";
}

TEST(NodeProcessTest, ADataDirOfAnotherClusterIsRefusedWithExit2) {
  ProcessClusterOptions options = testing::TestClusterOptions("refusal");
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
