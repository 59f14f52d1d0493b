#include "net/testing/process_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/check.h"
#include "net/transport/socket.h"

extern char** environ;

namespace blixard::net::testing {

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
    members.push_back(absl::StrCat(id, "=127.0.0.1:", node.peer_port));
  }
  return absl::StrJoin(members, ",");
}

std::string ProcessCluster::endpoint(int id) const {
  return absl::StrCat("127.0.0.1:", nodes_.at(id).client_port);
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
  Node& node = nodes_.at(id);
  CHECK_LE(node.pid, 0) << "node " << id << " is running";
  std::vector<std::string> argv = {
      "blixard",
      "node",
      absl::StrCat("--id=", id),
      absl::StrCat("--data_dir=", data_dir(id)),
      absl::StrCat("--listen_peer=127.0.0.1:", node.peer_port),
      absl::StrCat("--listen_client=", endpoint(id)),
      absl::StrCat("--initial_cluster=", initial_cluster()),
      absl::StrCat("--initial_cluster_state=", initial_cluster_state),
      absl::StrCat("--cluster_token=", options_.token),
      absl::StrCat("--tick_ms=", options_.tick_ms),
  };
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::vector<char*> raw;
  for (std::string& arg : argv) raw.push_back(arg.data());
  raw.push_back(nullptr);
  const std::string log = log_path(id);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int spawned =
      posix_spawn(&pid, options_.binary.c_str(), &files, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (spawned != 0) {
    return absl::InternalError(
        absl::StrCat("spawn ", options_.binary, ": ", std::strerror(spawned)));
  }
  node.pid = pid;
  return absl::OkStatus();
}

absl::Status ProcessCluster::StartAll() {
  for (auto& [id, node] : nodes_) {
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

std::string ProcessCluster::Log(int id) const {
  std::ifstream in(log_path(id));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
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
