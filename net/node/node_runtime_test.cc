// Three NodeRuntimes in one process, each with its own loop, driven in turn
// on this thread: the Host on the real Env (epoll loop, SQLite store with
// its I/O thread, TCP on 127.0.0.1 with ephemeral ports). They elect a
// leader, replicate writes, and keep them across a restart of every node.
#include "net/node/node_runtime.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/base/logger.h"
#include "core/base/status_macros.h"
#include "core/base/status_matchers.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"
#include "gtest/gtest.h"

namespace blixard::net {
namespace {

using ::blixard::testing::StatusIs;

// Bounds the driving loops: the test fails rather than hang.
constexpr int kRoundsMax = 20'000;

std::string TempDir(absl::string_view name) {
  const char* base = std::getenv("TEST_TMPDIR");
  return absl::StrCat(base != nullptr ? base : "/tmp", "/", name);
}

class LocalCluster {
 public:
  // Data dirs are named by `token` (one cluster per token in a test run).
  explicit LocalCluster(int nodes, std::string token) : token_(std::move(token)) {
    for (int i = 1; i <= nodes; ++i) ids_.push_back(NodeId(static_cast<uint64_t>(i)));
  }

  // Starts every node (ports learned after all are bound), kNew.
  absl::Status StartAll() {
    for (NodeId id : ids_) RETURN_IF_ERROR(StartNode(id));
    for (auto& [id, node] : nodes_) {
      for (auto& [other, peer] : nodes_) {
        if (other == id) continue;
        RETURN_IF_ERROR(node->AddPeer(other, {"127.0.0.1", peer->peer_port()}));
      }
    }
    return absl::OkStatus();
  }

  absl::Status StartNode(NodeId id) {
    NodeConfig config;
    config.id = id;
    config.cluster_token = token_;
    config.data_dir = TempDir(absl::StrCat(dir_prefix_.empty() ? token_ : dir_prefix_, "-n", id.value()));
    for (NodeId member : ids_) config.initial_cluster[member] = {"127.0.0.1", 0};
    config.tick_us = 20'000;
    config.handle_stop_signals = false;
    ASSIGN_OR_RETURN(nodes_[id], NodeRuntime::Start(std::move(config), &logger_));
    return absl::OkStatus();
  }

  void StopAll() { nodes_.clear(); }

  // Runs every loop once, a millisecond at most each.
  void Round() {
    for (auto& [id, node] : nodes_) node->loop().RunOnce(absl::Milliseconds(1));
  }

  // Drives until `done` or the round bound; returns whether done.
  template <typename Done>
  bool DriveUntil(Done done) {
    for (int round = 0; round < kRoundsMax; ++round) {
      if (done()) return true;
      Round();
    }
    return done();
  }

  NodeId Leader() {
    for (auto& [id, node] : nodes_) {
      if (node->host().is_leader()) return id;
    }
    return kNoNode;
  }

  NodeRuntime& node(NodeId id) { return *nodes_.at(id); }
  const std::vector<NodeId>& ids() const { return ids_; }

  void set_dir_prefix(std::string prefix) { dir_prefix_ = std::move(prefix); }

 private:
  std::string token_;
  std::string dir_prefix_;
  std::vector<NodeId> ids_;
  StderrLogger logger_{LogLevel::kWarning};
  std::map<NodeId, std::unique_ptr<NodeRuntime>> nodes_;
};

api::ClientRequest Put(const std::string& key, const std::string& value, uint64_t sequence) {
  api::ClientRequest request;
  cluster::Command* command = request.mutable_command();
  command->mutable_request_id()->set_client_id(77);
  command->mutable_request_id()->set_sequence(sequence);
  command->mutable_kv_put()->set_key(key);
  command->mutable_kv_put()->set_value(value);
  return request;
}

TEST(NodeRuntimeTest, ThreeNodesReplicateWritesAndKeepThemAcrossARestartOfEveryNode) {
  constexpr int kWrites = 200;
  Index committed;
  {
    LocalCluster cluster(3, "replicate");
    ASSERT_OK(cluster.StartAll());
    ASSERT_TRUE(cluster.DriveUntil([&] { return !cluster.Leader().is_none(); }))
        << "no leader elected";
    const NodeId leader = cluster.Leader();
    int acknowledged = 0;
    for (int i = 0; i < kWrites; ++i) {
      cluster.node(leader).host().Submit(
          Put(absl::StrCat("k", i), absl::StrCat("v", i), static_cast<uint64_t>(i + 1)),
          [&](const api::ClientResponse& response) {
            EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK) << response.error();
            ++acknowledged;
          });
    }
    ASSERT_TRUE(cluster.DriveUntil([&] { return acknowledged == kWrites; }))
        << acknowledged << " of " << kWrites << " writes acknowledged";
    // Every node applies every write.
    ASSERT_TRUE(cluster.DriveUntil([&] {
      for (NodeId id : cluster.ids()) {
        if (cluster.node(id).host().state_machine().FindKv(absl::StrCat("k", kWrites - 1)) ==
            nullptr) {
          return false;
        }
      }
      return true;
    }));
    committed = cluster.node(leader).host().commit_index();
    cluster.StopAll();  // graceful: the stores close durably
  }
  // The same data dirs, new processes' worth of state (new ports).
  LocalCluster cluster(3, "replicate");
  ASSERT_OK(cluster.StartAll());
  ASSERT_TRUE(cluster.DriveUntil([&] { return !cluster.Leader().is_none(); }));
  ASSERT_TRUE(cluster.DriveUntil([&] {
    for (NodeId id : cluster.ids()) {
      if (cluster.node(id).host().applied_index() < committed) return false;
    }
    return true;
  })) << "the nodes did not apply again what was committed before the restart";
  for (NodeId id : cluster.ids()) {
    for (int i = 0; i < kWrites; ++i) {
      const cluster::KvEntry* entry =
          cluster.node(id).host().state_machine().FindKv(absl::StrCat("k", i));
      ASSERT_NE(entry, nullptr) << "n" << id.value() << " lost k" << i;
      EXPECT_EQ(entry->value(), absl::StrCat("v", i));
    }
  }
}

TEST(NodeRuntimeTest, AStoreOfAnotherClusterIsRefused) {
  {
    LocalCluster cluster(1, "first");
    cluster.set_dir_prefix("refused");
    ASSERT_OK(cluster.StartAll());
    ASSERT_TRUE(cluster.DriveUntil([&] { return !cluster.Leader().is_none(); }));
  }
  LocalCluster other(1, "second");
  other.set_dir_prefix("refused");
  const absl::Status status = other.StartAll();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("belongs to cluster"), absl::string_view::npos) << status;
}

TEST(NodeRuntimeTest, BadSettingsAreNamed) {
  StderrLogger logger(LogLevel::kError);
  NodeConfig config;
  config.id = NodeId(1);
  EXPECT_THAT(NodeRuntime::Start(config, &logger).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("data_dir")));
  config.data_dir = TempDir("bad");
  config.initial_cluster[NodeId(2)] = {"127.0.0.1", 1};
  EXPECT_THAT(NodeRuntime::Start(config, &logger).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("initial_cluster")));
  EXPECT_THAT(ParseInitialCluster("1=127.0.0.1:4001,1=127.0.0.1:4002").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("twice")));
  EXPECT_THAT(ParseInitialCluster("0=127.0.0.1:4001").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseSocketAddress("localhost:80").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("numeric IPv4")));
  EXPECT_THAT(ParseSocketAddress("127.0.0.1:65536").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("port")));
  ASSERT_OK_AND_ASSIGN(auto members, ParseInitialCluster("1=127.0.0.1:4001, 2=10.0.0.2:4002"));
  EXPECT_EQ(members.size(), 2u);
  EXPECT_EQ(members.at(NodeId(2)).port, 4002);
}

}  // namespace
}  // namespace blixard::net
