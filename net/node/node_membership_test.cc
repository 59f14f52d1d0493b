// Membership of a real cluster through the CLI (`blixard member ...`):
// three founders; a 4th node added as a learner, started with the exact
// command `member add` prints, refused promotion until it caught up, then
// promoted; a voter removed (it is told, and exits); its id never reused;
// and a node of another cluster refused by the peers. Every wait is
// bounded; only the processes the test started are signalled, by pid.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "net/testing/process_cluster.h"

namespace blixard::net {
namespace {

using std::chrono::seconds;
using testing::CliResult;
using testing::ProcessCluster;
using testing::ProcessClusterOptions;

class NodeMembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ProcessClusterOptions options = testing::TestClusterOptions("membership");
    options.nodes = 5;  // 1..3 found the cluster; 4 is added; 5 is of another cluster
    options.founders = 3;
    ASSERT_OK_AND_ASSIGN(cluster_, ProcessCluster::Create(std::move(options)));
  }

  // `blixard member|kv ... --endpoints=<the live members'>`.
  CliResult Cli(std::vector<std::string> args) {
    std::vector<std::string> endpoints;
    for (int id = 1; id <= 4; ++id) {
      if (cluster_->running(id)) endpoints.push_back(cluster_->endpoint(id));
    }
    args.push_back(absl::StrCat("--endpoints=", absl::StrJoin(endpoints, ",")));
    return cluster_->RunCli(std::move(args));
  }

  // Runs `args` until it exits 0 (bounded); the last result.
  CliResult CliUntilOk(const std::vector<std::string>& args, seconds timeout = seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    CliResult result = Cli(args);
    while (result.exit_code != 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      result = Cli(args);
    }
    return result;
  }

  std::unique_ptr<ProcessCluster> cluster_;
};

std::string Show(const CliResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout: ", r.out, "\nstderr: ", r.err);
}

TEST_F(NodeMembershipTest, AddALearnerPromoteItRemoveAVoterAndRefuseAnotherCluster) {
  ASSERT_OK(cluster_->StartAll());
  ASSERT_EQ(CliUntilOk({"kv", "put", "before", "1"}).exit_code, 0);

  // Every founder publishes where it listens: the member list shows three
  // voters with their client addresses.
  CliResult list;
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  do {
    list = Cli({"member", "list"});
    if (list.exit_code == 0 && list.out.find(cluster_->endpoint(1)) != std::string::npos &&
        list.out.find(cluster_->endpoint(2)) != std::string::npos &&
        list.out.find(cluster_->endpoint(3)) != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(list.exit_code, 0) << Show(list);
  for (int id = 1; id <= 3; ++id) {
    EXPECT_NE(list.out.find(cluster_->endpoint(id)), std::string::npos) << Show(list);
    EXPECT_NE(list.out.find(cluster_->peer_address(id)), std::string::npos) << Show(list);
  }
  const std::vector<std::string> pieces = absl::StrSplit(list.out, " voter ");
  EXPECT_EQ(pieces.size(), 4u) << "three voters: " << Show(list);

  // Usage: a new member must be added as a learner.
  CliResult usage = Cli({"member", "add", absl::StrCat("--peer_address=", cluster_->peer_address(4))});
  EXPECT_EQ(usage.exit_code, 2) << Show(usage);
  EXPECT_NE(usage.err.find("learner"), std::string::npos) << Show(usage);

  // Add node 4 as a learner: the CLI prints the command to start it with.
  CliResult added = Cli({"member", "add", "--learner",
                         absl::StrCat("--peer_address=", cluster_->peer_address(4)),
                         absl::StrCat("--data_dir=", cluster_->data_dir(4)),
                         absl::StrCat("--listen_client=", cluster_->endpoint(4))});
  ASSERT_EQ(added.exit_code, 0) << Show(added);
  EXPECT_NE(added.out.find("member 4 is now learner"), std::string::npos) << Show(added);
  std::string command;
  for (absl::string_view line : absl::StrSplit(added.out, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "blixard node ")) command = std::string(line);
  }
  ASSERT_FALSE(command.empty()) << Show(added);
  EXPECT_NE(command.find("--initial_cluster_state=existing"), std::string::npos) << command;
  EXPECT_NE(command.find(absl::StrCat("4=", cluster_->peer_address(4))), std::string::npos);

  // Not started yet: promotion is refused (exit 1), and says why.
  CliResult early = Cli({"member", "promote", "4"});
  EXPECT_EQ(early.exit_code, 1) << Show(early);
  EXPECT_TRUE(early.err.find("not caught up") != std::string::npos ||
              early.err.find("not recorded its store") != std::string::npos)
      << Show(early);

  // Start it with exactly that command; once caught up it is promoted.
  std::vector<std::string> args = {"node"};
  for (absl::string_view arg : absl::StrSplit(command, ' ', absl::SkipEmpty())) {
    args.emplace_back(arg);
  }
  args.push_back("--tick_ms=50");
  ASSERT_OK(cluster_->StartArgs(4, args));
  CliResult promoted = CliUntilOk({"member", "promote", "4"});
  ASSERT_EQ(promoted.exit_code, 0) << Show(promoted) << cluster_->Log(4);
  EXPECT_NE(promoted.out.find("member 4 is now voter"), std::string::npos) << Show(promoted);
  ASSERT_EQ(CliUntilOk({"kv", "put", "after_promote", "2"}).exit_code, 0);

  // Remove voter 2: the change applies, and node 2 is told and exits 0.
  CliResult removed = CliUntilOk({"member", "remove", "2"});
  ASSERT_EQ(removed.exit_code, 0) << Show(removed);
  EXPECT_NE(removed.out.find("member 2 is now removed"), std::string::npos) << Show(removed);
  ASSERT_OK_AND_ASSIGN(const int status, cluster_->Wait(2, seconds(30)));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << cluster_->Log(2);
  EXPECT_NE(cluster_->Log(2).find("removed from the cluster"), std::string::npos)
      << cluster_->Log(2);

  // Its data dir cannot come back: started again, it is refused at once
  // (exit 2) when it had applied its removal, else told again by the first
  // member it calls (exit 0). Its id is never reused either.
  auto count_removed = [&] {
    const std::string log = cluster_->Log(2);
    const std::vector<std::string> pieces = absl::StrSplit(log, "removed from the cluster");
    return pieces.size() - 1;
  };
  const size_t removed_lines = count_removed();
  ASSERT_OK(cluster_->Start(2));
  ASSERT_OK_AND_ASSIGN(const int again, cluster_->Wait(2, seconds(30)));
  EXPECT_TRUE(WIFEXITED(again) && (WEXITSTATUS(again) == 0 || WEXITSTATUS(again) == 2))
      << again << cluster_->Log(2);
  EXPECT_GT(count_removed(), removed_lines) << cluster_->Log(2);
  CliResult reuse = Cli({"member", "add", "--learner", "--id=2",
                         absl::StrCat("--peer_address=", cluster_->peer_address(2))});
  EXPECT_EQ(reuse.exit_code, 1) << Show(reuse);
  EXPECT_NE(reuse.err.find("never reused"), std::string::npos) << Show(reuse);

  // The three voters (1, 3, 4) serve writes and the member list says so.
  ASSERT_EQ(CliUntilOk({"kv", "put", "after_remove", "3"}).exit_code, 0);
  CliResult get = CliUntilOk({"kv", "get", "before"});
  EXPECT_EQ(get.out, "1\n") << Show(get);
  list = Cli({"member", "list", "--output=json"});
  ASSERT_EQ(list.exit_code, 0) << Show(list);
  EXPECT_NE(list.out.find("{\"id\":2,\"role\":\"removed\""), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("{\"id\":4,\"role\":\"voter\""), std::string::npos) << list.out;

  // A node of another cluster (another token) that dials the members is
  // refused by them, and never becomes one.
  ASSERT_OK(cluster_->StartArgs(
      5, {"node", "--id=5", absl::StrCat("--data_dir=", cluster_->data_dir(5)),
          absl::StrCat("--listen_peer=", cluster_->peer_address(5)),
          absl::StrCat("--listen_client=", cluster_->endpoint(5)),
          absl::StrCat("--initial_cluster=1=", cluster_->peer_address(1),
                       ",5=", cluster_->peer_address(5)),
          "--initial_cluster_state=existing", "--cluster_token=another", "--tick_ms=50"}));
  EXPECT_TRUE(cluster_->WaitForLog(1, "wrong_cluster", seconds(30))) << cluster_->Log(1);
  list = Cli({"member", "list", "--output=json"});
  EXPECT_EQ(list.out.find("\"id\":5"), std::string::npos) << list.out;
}

}  // namespace
}  // namespace blixard::net
