// ProcessCluster: real `blixard node` processes on 127.0.0.1 for
// multi-process tests (ARCHITECTURE.md, "Testing the real thing"). Each node
// gets free loopback ports, its own data dir under the test's temp dir and a
// log file; the cluster stops only the processes it started, by pid, and
// kills what is left when it goes away. Every wait is bounded.
//
// Test-only. Thread: one (the test's); not thread-safe.
#ifndef BLIXARD_NET_TESTING_PROCESS_CLUSTER_H_
#define BLIXARD_NET_TESTING_PROCESS_CLUSTER_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/types.h"
#include "net/api/client.h"

namespace blixard::net::testing {

// What a run of the CLI printed, and its exit code (-1: killed by a
// signal, or by RunCli's timeout).
struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// A client of `endpoints` ("HOST:PORT,..."), with a 30 s deadline per
// call. CHECK-fails when the client cannot be made.
std::unique_ptr<Client> ClientFor(const std::string& endpoints);

struct ProcessClusterOptions {
  std::string binary;      // the blixard binary
  std::string base_dir;    // data dirs and logs go under it (created)
  int nodes = 3;
  // Nodes 1..founders form the cluster (--initial_cluster names them);
  // the others get ports and dirs, to be added later. 0: all of them.
  int founders = 0;
  std::string token = "process-cluster";
  int64_t tick_ms = 50;
  // Added to every node's flags by Start (before its own extras).
  std::vector<std::string> extra_flags;
};

// A test's cluster options: the binary from $BLIXARD_BIN (else
// cli/blixard), data dirs and logs under $TEST_TMPDIR/<name> (else
// /tmp/<name>), cluster token <name>.
ProcessClusterOptions TestClusterOptions(const std::string& name);

class ProcessCluster {
 public:
  // Chooses every node's ports; starts nothing. Errors: no free ports, a
  // base dir that cannot be created.
  static absl::StatusOr<std::unique_ptr<ProcessCluster>> Create(ProcessClusterOptions options);
  // SIGKILLs every node still running (by pid) and reaps it.
  ~ProcessCluster();
  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  // Starts node `id` (1..nodes) with `extra` flags after the usual ones
  // (a later flag wins). REQUIRES: it is not running.
  absl::Status Start(int id, const std::vector<std::string>& extra = {},
                     const std::string& initial_cluster_state = "new");
  // Starts the founders.
  absl::Status StartAll();
  // Starts node `id` with exactly `args` (after the program name; e.g. the
  // command `blixard member add` prints), its output to its log.
  // REQUIRES: it is not running.
  absl::Status StartArgs(int id, std::vector<std::string> args);

  // Sends `signal` to node `id`'s process. REQUIRES: running.
  void Signal(int id, int signal);
  // Waits up to `timeout` for node `id` to exit; its wait status, or
  // DEADLINE_EXCEEDED (it keeps running).
  absl::StatusOr<int> Wait(int id, std::chrono::milliseconds timeout);
  bool running(int id) const;

  // Client endpoints "127.0.0.1:PORT,...", and one node's.
  std::string endpoints() const;
  std::string endpoint(int id) const;
  std::string peer_address(int id) const;
  std::string initial_cluster() const;
  // Routes node `from`'s peer traffic to node `to` through `address` (a
  // fault proxy) instead of `to`'s peer port: Start gives `from` an
  // --initial_cluster naming `address` for `to` (its own entry stays its
  // listen address, which it advertises). Takes effect at the next Start.
  void SetPeerRoute(int from, int to, const std::string& address);
  // The --initial_cluster Start gives node `id`: initial_cluster() with
  // `id`'s routes applied.
  std::string initial_cluster_for(int id) const;
  std::string data_dir(int id) const;
  std::string log_path(int id) const;
  // Runs the blixard binary with `args` (after the program name) to the
  // end, killing it (by pid) after `timeout`.
  CliResult RunCli(std::vector<std::string> args,
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // The node's log so far.
  std::string Log(int id) const;
  // Waits up to `timeout` for `text` to appear in node `id`'s log.
  bool WaitForLog(int id, const std::string& text, std::chrono::milliseconds timeout) const;

 private:
  struct Node {
    int peer_port = 0;
    int client_port = 0;
    pid_t pid = -1;
  };
  explicit ProcessCluster(ProcessClusterOptions options) : options_(std::move(options)) {}

  ProcessClusterOptions options_;
  std::map<int, Node> nodes_;
  std::map<std::pair<int, int>, std::string> routes_;  // (from, to) -> address
  int cli_runs_ = 0;
};

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_TESTING_PROCESS_CLUSTER_H_
