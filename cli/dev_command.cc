#include "cli/dev_command.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "net/transport/socket.h"

ABSL_FLAG(int, dev_nodes, 3, "number of nodes (1-9)");
ABSL_FLAG(std::string, dev_data_dir, "",
          "where the nodes keep their stores and logs (default: a new directory under /tmp)");
ABSL_FLAG(int64_t, dev_tick_ms, 100, "Raft tick of every node, milliseconds");

extern char** environ;

namespace blixard::cli {
namespace {

constexpr int kNodesMax = 9;
// How long stopped nodes get to exit before SIGKILL.
constexpr std::chrono::seconds kStopGrace(10);

struct Child {
  int id = 0;
  pid_t pid = -1;
  std::string log;
  bool exited = false;
};

int RunDev(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "blixard dev: takes no arguments (got '%s')\n", args[0].c_str());
    return kExitUsage;
  }
  const int nodes = absl::GetFlag(FLAGS_dev_nodes);
  if (nodes < 1 || nodes > kNodesMax) {
    std::fprintf(stderr, "blixard dev: --nodes=%d is not in 1..%d\n", nodes, kNodesMax);
    return kExitUsage;
  }
  const int64_t tick_ms = absl::GetFlag(FLAGS_dev_tick_ms);
  if (tick_ms < 1 || tick_ms > 10'000) {
    std::fprintf(stderr, "blixard dev: --tick_ms=%lld is not in 1..10000\n",
                 static_cast<long long>(tick_ms));
    return kExitUsage;
  }
  std::string dir = absl::GetFlag(FLAGS_dev_data_dir);
  if (dir.empty()) {
    char pattern[] = "/tmp/blixard-dev-XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
      std::fprintf(stderr, "blixard dev: cannot create a directory under /tmp: %s\n",
                   std::strerror(errno));
      return kExitFailure;
    }
    dir = pattern;
  } else if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "blixard dev: cannot create --data_dir '%s': %s\n", dir.c_str(),
                 std::strerror(errno));
    return kExitUsage;
  }
  absl::StatusOr<std::vector<uint16_t>> free = net::FreeLoopbackPorts(2 * static_cast<size_t>(nodes));
  if (!free.ok()) {
    std::fprintf(stderr, "blixard dev: could not find %d free loopback ports: %s\n", 2 * nodes,
                 free.status().ToString().c_str());
    return kExitFailure;
  }
  const std::vector<uint16_t>& ports = *free;
  std::vector<std::string> members, endpoints;
  for (int i = 1; i <= nodes; ++i) {
    members.push_back(absl::StrCat(i, "=127.0.0.1:", ports[static_cast<size_t>(2 * i - 2)]));
    endpoints.push_back(absl::StrCat("127.0.0.1:", ports[static_cast<size_t>(2 * i - 1)]));
  }
  // A token of its own: a dev cluster never mixes with another's stores.
  const std::string token = absl::StrCat("dev-", getpid(), "-", ports[0]);

  // Signals reach this process through sigwait; children start with none
  // blocked, so each node handles its own SIGTERM.
  sigset_t waited;
  sigemptyset(&waited);
  sigaddset(&waited, SIGINT);
  sigaddset(&waited, SIGTERM);
  sigaddset(&waited, SIGCHLD);
  sigprocmask(SIG_BLOCK, &waited, nullptr);
  sigset_t none;
  sigemptyset(&none);

  std::vector<Child> children;
  for (int i = 1; i <= nodes; ++i) {
    Child child;
    child.id = i;
    child.log = absl::StrCat(dir, "/n", i, ".log");
    std::vector<std::string> argv = {
        "blixard",
        "node",
        absl::StrCat("--id=", i),
        absl::StrCat("--data_dir=", dir, "/n", i),
        absl::StrCat("--listen_peer=127.0.0.1:", ports[static_cast<size_t>(2 * i - 2)]),
        absl::StrCat("--listen_client=", endpoints[static_cast<size_t>(i - 1)]),
        absl::StrCat("--initial_cluster=", absl::StrJoin(members, ",")),
        "--initial_cluster_state=new",
        absl::StrCat("--cluster_token=", token),
        absl::StrCat("--tick_ms=", tick_ms),
    };
    std::vector<char*> raw;
    for (std::string& arg : argv) raw.push_back(arg.data());
    raw.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, child.log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    const int spawned =
        posix_spawn(&child.pid, "/proc/self/exe", &files, &attr, raw.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attr);
    if (spawned != 0) {
      std::fprintf(stderr, "blixard dev: could not start node %d: %s\n", i,
                   std::strerror(spawned));
      for (Child& started : children) kill(started.pid, SIGTERM);
      for (Child& started : children) waitpid(started.pid, nullptr, 0);
      return kExitFailure;
    }
    children.push_back(child);
  }
  std::printf("endpoints: %s\n", absl::StrJoin(endpoints, ",").c_str());
  std::printf("data: %s (logs: n1.log .. n%d.log)\n", dir.c_str(), nodes);
  std::fflush(stdout);

  // Wait for a stop request or a node that exits on its own.
  int exit_code = kExitOk;
  for (;;) {
    int signal = 0;
    sigwait(&waited, &signal);
    if (signal != SIGCHLD) break;
    bool died = false;
    for (Child& child : children) {
      int status = 0;
      if (!child.exited && waitpid(child.pid, &status, WNOHANG) == child.pid) {
        child.exited = true;
        died = true;
        std::fprintf(stderr, "blixard dev: node %d exited (%s %d); see %s\n", child.id,
                     WIFEXITED(status) ? "code" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                     child.log.c_str());
      }
    }
    if (died) {
      exit_code = kExitFailure;
      break;
    }
  }
  // Stop every node this command started, by pid; SIGKILL the ones that
  // outlive the grace period.
  for (Child& child : children) {
    if (!child.exited) kill(child.pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  for (Child& child : children) {
    while (!child.exited) {
      int status = 0;
      const pid_t done = waitpid(child.pid, &status, WNOHANG);
      if (done == child.pid || (done < 0 && errno == ECHILD)) {
        child.exited = true;
      } else if (std::chrono::steady_clock::now() > deadline) {
        kill(child.pid, SIGKILL);
        waitpid(child.pid, nullptr, 0);
        child.exited = true;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  std::printf("stopped %d nodes\n", nodes);
  return exit_code;
}

}  // namespace

const Command& DevCommand() {
  static const Command* const command = new Command{
      "dev",
      "run a local cluster of real nodes until Ctrl-C",
      "",
      {
          BindFlag("nodes", FLAGS_dev_nodes),
          BindFlag("data_dir", FLAGS_dev_data_dir),
          BindFlag("tick_ms", FLAGS_dev_tick_ms),
      },
      &RunDev};
  return *command;
}

}  // namespace blixard::cli
