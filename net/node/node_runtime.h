// NodeRuntime: one production Blixard node in one process. It builds the
// production Env (core/env.h) — the epoll loop's clock and timers, the
// SQLite log store (its completions reach the loop through one eventfd),
// the TCP peer transport — and runs the same Host the simulator runs on it
// (ARCHITECTURE.md, "Production runtime").
//
//   NodeConfig config;                 // usually from `blixard node` flags
//   ASSIGN_OR_RETURN(std::unique_ptr<NodeRuntime> node,
//                    NodeRuntime::Start(std::move(config), &logger));
//   node->Run();                       // until SIGTERM/SIGINT or Stop()
//
// Clients: the client protocol (net/api) on listen_client; a status request
// is answered by the node itself, everything else goes to Host::Submit.
//
// Stopping (a signal, or Stop()): the node stops accepting clients and
// peers, and the store makes every queued write durable before it closes
// (its destructor waits), so an acknowledged write is never lost by a
// graceful stop; a crash loses nothing acknowledged either (writes are
// acknowledged only once durable).
//
// Membership: the node records its peer address (its initial_cluster
// entry) and client address in the cluster (member list); it tells the
// transport where every member listens as the member records say, so a
// member added later (`blixard member add`) is reached without a restart;
// a node the cluster removed stops for good (Run returns, removed() is
// true) and refuses to start again on that data dir.
//
// Thread: the loop thread (the one that called Start) only, except the
// store's own I/O thread, which it owns. Work: a worker node runs tasks as
// processes (net/exec); VMs are not run yet.
#ifndef BLIXARD_NET_NODE_NODE_RUNTIME_H_
#define BLIXARD_NET_NODE_NODE_RUNTIME_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/logger.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/host/host.h"
#include "net/api/api_server.h"
#include "net/loop/event_loop.h"
#include "net/loop/loop_timers.h"
#include "net/loop/notifier.h"
#include "net/node/worker_capacity.h"
#include "net/transport/socket.h"
#include "net/transport/tcp_transport.h"
#include "storage/sqlite_log_store.h"

namespace blixard::net {

// "1=HOST:PORT,2=HOST:PORT,...": each member's id and peer address.
// INVALID_ARGUMENT naming the bad element (an id of 0, a repeated id, a bad
// address, an empty list).
absl::StatusOr<std::map<NodeId, SocketAddress>> ParseInitialCluster(absl::string_view text);

// The name of the command op in `request` that only the cluster's nodes
// send (a worker's reports, the leader's controllers, members' own
// records: register_worker, task_started, task_finished, vm_observed,
// worker_lost, advance_time, member_joined, member_attributes), or "" for
// anything a client may ask. The client port refuses those: a client
// could otherwise forge a task's result or mark a future joiner as wiped.
// (Nodes send them to each other over the peer transport, never here.)
absl::string_view NodeOnlyOperation(const api::ClientRequest& request);

// The cluster id every member derives from the same token (etcd's
// --initial-cluster-token): never 0.
uint64_t ClusterIdFromToken(absl::string_view token);

struct NodeConfig {
  NodeId id;
  // Distinct per cluster: stores and peers of another cluster are refused.
  std::string cluster_token = "blixard";
  // The cluster id itself (a joiner told it by `blixard member add`);
  // 0: ClusterIdFromToken(cluster_token).
  uint64_t cluster_id = 0;
  // Holds the store (blixard.db and its WAL); created if missing.
  std::string data_dir;
  SocketAddress listen_peer{"127.0.0.1", 0};  // port 0: ephemeral
  SocketAddress listen_client{"127.0.0.1", 0};
  // Where clients and members reach this node's client port, as recorded
  // in the cluster (member list); port 0 or empty host: listen_client's,
  // with the port bound.
  SocketAddress advertise_client{"", 0};
  // Every member's peer address, this node's included (port 0: learned
  // later through NodeRuntime::AddPeer).
  std::map<NodeId, SocketAddress> initial_cluster;
  // kNew: an empty store bootstraps the cluster from initial_cluster.
  // kExisting: an empty store waits to be added as a learner.
  host::InitialClusterState initial_cluster_state = host::InitialClusterState::kNew;
  // Raft timing: a tick, and elections after election_ticks of them.
  int64_t tick_us = 100'000;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  // A snapshot every this many applied entries; this many entries kept
  // below it for followers that lag a little (HostOptions).
  uint64_t snapshot_interval_entries = 10'000;
  uint64_t log_retain_entries = 1'000;
  // Whether this node runs tasks (a worker): it registers with the
  // capacity it detects (worker_capacity.h) less `reserve`, and the
  // features it is given; its tasks are processes (net/exec) whose folders
  // and records live in data_dir/exec. Off: it refuses all work.
  bool worker = true;
  std::vector<std::string> features;
  WorkerReserve reserve;
  // A delegated cgroup v2 subtree for task leaves (ProcessExecutorOptions);
  // empty: rlimits only.
  std::string cgroup_root;
  // How VMs run (ProcessExecutorOptions::vm_driver): "qemu", "process" or
  // "auto"; and how long a guest gets to power down before QEMU is told
  // to quit.
  std::string vm_driver = "auto";
  int64_t vm_powerdown_grace_us = 30'000'000;
  // SIGTERM/SIGINT stop the node gracefully (off in tests that run several
  // nodes in one process).
  bool handle_stop_signals = true;

  // INVALID_ARGUMENT naming the first bad setting.
  absl::Status Validate() const;
};

// An Executor for a node that runs no work: refuses every start.
class NoWorkExecutor final : public Executor {
 public:
  void SetCallback(Callback callback) override { callback_ = std::move(callback); }
  absl::Status Start(const WorkSpec& spec) override;
  bool Stop(WorkKind, absl::string_view) override { return false; }
  std::vector<std::string> Running(WorkKind) const override { return {}; }

 private:
  Callback callback_;
};

class NodeRuntime {
 public:
  // Opens the store, binds the peer and client ports, starts the Host.
  // Errors (nothing keeps running): INVALID_ARGUMENT for a bad config;
  // the store's (NOT_FOUND, FAILED_PRECONDITION, DATA_LOSS) naming the file;
  // FAILED_PRECONDITION from the Host for a store of another cluster or
  // node; the socket's (e.g. ALREADY_EXISTS/UNAVAILABLE for a port in use)
  // naming the address. REQUIRES: logger outlives the runtime; called on
  // the thread that will run it, before any other thread starts when
  // config.handle_stop_signals.
  static absl::StatusOr<std::unique_ptr<NodeRuntime>> Start(NodeConfig config, Logger* logger);

  // Closes in dependency order; the store makes queued writes durable.
  ~NodeRuntime();
  NodeRuntime(const NodeRuntime&) = delete;
  NodeRuntime& operator=(const NodeRuntime&) = delete;

  // Runs the loop until a stop signal or Stop().
  void Run();
  // Stops taking client calls and makes Run return. Loop thread only.
  void Stop();
  // Tells the transport where peer `id` listens (initial_cluster may name
  // port 0 for a peer whose ephemeral port is not known yet), replacing
  // any address it had (from the member records, say). Errors: the
  // transport's (a bad address, this node's own id).
  absl::Status AddPeer(NodeId id, SocketAddress address);

  // The cluster removed this node (at removed_index()): Run returned or
  // will, for good.
  bool removed() const { return removed_; }
  Index removed_index() const { return removed_index_; }

  uint16_t peer_port() const { return transport_->listen_port(); }
  uint16_t client_port() const { return api_->port(); }
  // This node's own view, as the client protocol's status request answers.
  api::NodeStatus Status(const api::NodeStatusRequest& request = {}) const;
  EventLoop& loop() { return *loop_; }
  host::Host& host() { return *host_; }
  const NodeConfig& config() const { return config_; }

 private:
  NodeRuntime(NodeConfig config, Logger* logger)
      : config_(std::move(config)), logger_(logger), observer_(this) {}

  // What the runtime does with what the Host reports: members' addresses
  // to the transport, and a stop on removal.
  class Observer final : public host::NullObserver {
   public:
    explicit Observer(NodeRuntime* runtime) : runtime_(runtime) {}
    void OnMembers(NodeId, const ClusterStateMachine& sm) override { runtime_->SyncPeers(sm); }
    void OnRemoved(NodeId, Index index) override { runtime_->OnRemoved(index); }

   private:
    NodeRuntime* runtime_;
  };

  // Adds every member the records name, with an address, that the
  // transport does not know yet.
  void SyncPeers(const ClusterStateMachine& sm);
  void OnRemoved(Index index);

  NodeConfig config_;
  Logger* logger_;
  // Destroyed bottom-up: the Host first (it holds the Env), the store last
  // but one (its destructor waits for durability), the loop last.
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<LoopTimers> timers_;
  std::unique_ptr<Notifier> store_notifier_;
  std::unique_ptr<storage::SqliteLogStore> store_;
  std::unique_ptr<TcpTransport> transport_;
  // The ProcessExecutor of a worker, else a NoWorkExecutor.
  std::unique_ptr<Executor> executor_;
  Observer observer_;
  bool removed_ = false;
  Index removed_index_;
  std::unique_ptr<host::Host> host_;
  uint64_t cluster_id_ = 0;
  // Goes first: no client call reaches a Host that is going away.
  std::unique_ptr<ApiServer> api_;
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_NODE_NODE_RUNTIME_H_
