#include "net/testing/process_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"
#include "net/transport/socket.h"

extern char** environ;

namespace blixard::net::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Starts `binary` with `argv` (argv[0] included), stdout appended to
// `out`, stderr to `err` (empty: with stdout).
absl::StatusOr<pid_t> Spawn(const std::string& binary, std::vector<std::string> argv,
                            const std::string& out, const std::string& err) {
  std::vector<char*> raw;
  for (std::string& arg : argv) raw.push_back(arg.data());
  raw.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (err.empty()) {
    posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&files, STDERR_FILENO, err.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
  }
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, binary.c_str(), &files, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (spawned != 0) {
    return absl::InternalError(absl::StrCat("spawn ", binary, ": ", std::strerror(spawned)));
  }
  return pid;
}

}  // namespace

ProcessClusterOptions TestClusterOptions(const std::string& name) {
  ProcessClusterOptions options;
  const char* binary = std::getenv("BLIXARD_BIN");
  options.binary = binary != nullptr ? binary : "cli/blixard";
  const char* tmp = std::getenv("TEST_TMPDIR");
  options.base_dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  options.token = name;
  return options;
}

std::unique_ptr<Client> ClientFor(const std::string& endpoints) {
  ClientOptions options;
  options.endpoints = absl::StrSplit(endpoints, ',');
  options.deadline_us = 30 * kMicrosPerSecond;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(std::move(options));
  CHECK_OK(client.status());
  return *std::move(client);
}

absl::StatusOr<std::unique_ptr<ProcessCluster>> ProcessCluster::Create(
    ProcessClusterOptions options) {
  if (mkdir(options.base_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", options.base_dir, ": ", std::strerror(errno)));
  }
  std::unique_ptr<ProcessCluster> cluster(new ProcessCluster(std::move(options)));
  absl::StatusOr<std::vector<uint16_t>> ports =
      FreeLoopbackPorts(2 * static_cast<size_t>(cluster->options_.nodes));
  if (!ports.ok()) return ports.status();
  for (int i = 1; i <= cluster->options_.nodes; ++i) {
    Node& node = cluster->nodes_[i];
    node.peer_port = (*ports)[static_cast<size_t>(2 * i - 2)];
    node.client_port = (*ports)[static_cast<size_t>(2 * i - 1)];
  }
  return cluster;
}

ProcessCluster::~ProcessCluster() {
  for (auto& [id, node] : nodes_) {
    if (node.pid <= 0) continue;
    kill(node.pid, SIGKILL);
    waitpid(node.pid, nullptr, 0);
  }
}

std::string ProcessCluster::initial_cluster() const {
  std::vector<std::string> members;
  for (const auto& [id, node] : nodes_) {
    if (options_.founders != 0 && id > options_.founders) break;
    members.push_back(absl::StrCat(id, "=127.0.0.1:", node.peer_port));
  }
  return absl::StrJoin(members, ",");
}

void ProcessCluster::SetPeerRoute(int from, int to, const std::string& address) {
  CHECK_NE(from, to) << "a node's own entry is its listen address";
  CHECK(nodes_.count(from) == 1 && nodes_.count(to) == 1) << from << " -> " << to;
  routes_[{from, to}] = address;
}

std::string ProcessCluster::initial_cluster_for(int id) const {
  std::vector<std::string> members;
  for (const auto& [member, node] : nodes_) {
    if (options_.founders != 0 && member > options_.founders) break;
    auto route = routes_.find({id, member});
    members.push_back(route != routes_.end()
                          ? absl::StrCat(member, "=", route->second)
                          : absl::StrCat(member, "=127.0.0.1:", node.peer_port));
  }
  return absl::StrJoin(members, ",");
}

std::string ProcessCluster::endpoint(int id) const {
  return absl::StrCat("127.0.0.1:", nodes_.at(id).client_port);
}

std::string ProcessCluster::peer_address(int id) const {
  return absl::StrCat("127.0.0.1:", nodes_.at(id).peer_port);
}

std::string ProcessCluster::endpoints() const {
  std::vector<std::string> all;
  for (const auto& [id, node] : nodes_) all.push_back(endpoint(id));
  return absl::StrJoin(all, ",");
}

std::string ProcessCluster::data_dir(int id) const {
  return absl::StrCat(options_.base_dir, "/n", id);
}

std::string ProcessCluster::log_path(int id) const {
  return absl::StrCat(options_.base_dir, "/n", id, ".log");
}

absl::Status ProcessCluster::Start(int id, const std::vector<std::string>& extra,
                                   const std::string& initial_cluster_state) {
  const Node& node = nodes_.at(id);
  std::vector<std::string> argv = {
      "node",
      absl::StrCat("--id=", id),
      absl::StrCat("--data_dir=", data_dir(id)),
      absl::StrCat("--listen_peer=127.0.0.1:", node.peer_port),
      absl::StrCat("--listen_client=", endpoint(id)),
      absl::StrCat("--initial_cluster=", initial_cluster_for(id)),
      absl::StrCat("--initial_cluster_state=", initial_cluster_state),
      absl::StrCat("--cluster_token=", options_.token),
      absl::StrCat("--tick_ms=", options_.tick_ms),
  };
  argv.insert(argv.end(), options_.extra_flags.begin(), options_.extra_flags.end());
  argv.insert(argv.end(), extra.begin(), extra.end());
  return StartArgs(id, std::move(argv));
}

absl::Status ProcessCluster::StartArgs(int id, std::vector<std::string> args) {
  Node& node = nodes_.at(id);
  CHECK_LE(node.pid, 0) << "node " << id << " is running";
  std::vector<std::string> argv = {"blixard"};
  argv.insert(argv.end(), args.begin(), args.end());
  ASSIGN_OR_RETURN(node.pid, Spawn(options_.binary, std::move(argv), log_path(id), ""));
  return absl::OkStatus();
}

absl::Status ProcessCluster::StartAll() {
  for (auto& [id, node] : nodes_) {
    if (options_.founders != 0 && id > options_.founders) break;
    if (absl::Status s = Start(id); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void ProcessCluster::Signal(int id, int signal) {
  const Node& node = nodes_.at(id);
  CHECK_GT(node.pid, 0) << "node " << id << " is not running";
  kill(node.pid, signal);
}

absl::StatusOr<int> ProcessCluster::Wait(int id, std::chrono::milliseconds timeout) {
  Node& node = nodes_.at(id);
  CHECK_GT(node.pid, 0) << "node " << id << " is not running";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(node.pid, &status, WNOHANG);
    if (done == node.pid) {
      node.pid = -1;
      return status;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("node ", id, " still runs"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool ProcessCluster::running(int id) const { return nodes_.at(id).pid > 0; }

std::string ProcessCluster::Log(int id) const { return ReadFile(log_path(id)); }

CliResult ProcessCluster::RunCli(std::vector<std::string> args,
                                 std::chrono::milliseconds timeout) {
  const std::string out = absl::StrCat(options_.base_dir, "/cli-", ++cli_runs_, ".out");
  const std::string err = absl::StrCat(options_.base_dir, "/cli-", cli_runs_, ".err");
  std::vector<std::string> argv = {"blixard"};
  argv.insert(argv.end(), args.begin(), args.end());
  CliResult result;
  absl::StatusOr<pid_t> pid = Spawn(options_.binary, std::move(argv), out, err);
  if (!pid.ok()) {
    result.err = pid.status().ToString();
    return result;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(*pid, SIGKILL);
      waitpid(*pid, nullptr, 0);
      result.err = "timed out; ";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  result.out = ReadFile(out);
  result.err += ReadFile(err);
  return result;
}

bool ProcessCluster::WaitForLog(int id, const std::string& text,
                                std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() <= deadline) {
    if (Log(id).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace blixard::net::testing
