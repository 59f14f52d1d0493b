#include "net/node/node_runtime.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/check.h"
#include "core/base/rng.h"
#include "core/base/status_macros.h"
#include "net/api/client_handler.h"
#include "net/exec/process_executor.h"

namespace blixard::net {

absl::StatusOr<std::map<NodeId, SocketAddress>> ParseInitialCluster(absl::string_view text) {
  std::map<NodeId, SocketAddress> members;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    const size_t eq = item.find('=');
    uint64_t id = 0;
    if (eq == absl::string_view::npos || !absl::SimpleAtoi(item.substr(0, eq), &id) ||
        id == 0 || id > kNodeIdMax) {
      return absl::InvalidArgumentError(absl::StrCat(
          "initial cluster member '", item, "' is not ID=HOST:PORT with 1 <= ID <= ", kNodeIdMax));
    }
    ASSIGN_OR_RETURN(SocketAddress address, ParseSocketAddress(item.substr(eq + 1)));
    if (!members.emplace(NodeId(id), std::move(address)).second) {
      return absl::InvalidArgumentError(absl::StrCat("initial cluster names node ", id, " twice"));
    }
  }
  if (members.empty()) return absl::InvalidArgumentError("initial cluster is empty");
  return members;
}

uint64_t ClusterIdFromToken(absl::string_view token) {
  const uint64_t id = StableHash64(absl::StrCat("blixard cluster token:", token));
  return id == 0 ? 1 : id;
}

absl::Status NodeConfig::Validate() const {
  if (id.is_none()) return absl::InvalidArgumentError("node: --id must be set (1 or more)");
  if (data_dir.empty()) return absl::InvalidArgumentError("node: --data_dir must be set");
  if (cluster_token.empty()) return absl::InvalidArgumentError("node: --cluster_token is empty");
  if (initial_cluster.count(id) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("node: --initial_cluster does not name this node (", id.value(), ")"));
  }
  return absl::OkStatus();
}

absl::string_view NodeOnlyOperation(const api::ClientRequest& request) {
  if (!request.has_command()) return "";
  switch (request.command().op_case()) {
    case cluster::Command::kRegisterWorker:
      return "register_worker";
    case cluster::Command::kTaskStarted:
      return "task_started";
    case cluster::Command::kTaskFinished:
      return "task_finished";
    case cluster::Command::kVmObserved:
      return "vm_observed";
    case cluster::Command::kWorkerLost:
      return "worker_lost";
    case cluster::Command::kAdvanceTime:
      return "advance_time";
    case cluster::Command::kMemberJoined:
      return "member_joined";
    case cluster::Command::kMemberAttributes:
      return "member_attributes";
    default:
      return "";
  }
}

absl::Status NoWorkExecutor::Start(const WorkSpec& spec) {
  return absl::FailedPreconditionError(
      absl::StrCat("this node runs no work (it is not a worker): refused ", spec.id));
}

namespace {

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat("data dir '", path, "' is not a directory"));
  }
  return absl::PermissionDeniedError(
      absl::StrCat("cannot create data dir '", path, "': ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeRuntime>> NodeRuntime::Start(NodeConfig config,
                                                                 Logger* logger) {
  CHECK(logger != nullptr);
  RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<NodeRuntime> node(new NodeRuntime(std::move(config), logger));
  const NodeConfig& c = node->config_;
  const uint64_t cluster_id = c.cluster_id != 0 ? c.cluster_id : ClusterIdFromToken(c.cluster_token);

  EventLoopOptions loop_options;
  loop_options.handle_stop_signals = c.handle_stop_signals;
  NodeRuntime* self = node.get();
  loop_options.on_stop_signal = [self](int signal) {
    self->logger_->Info("n", self->config_.id.value(), " got signal ", signal,
                        ": stopping (queued writes are made durable first)");
    self->Stop();
  };
  ASSIGN_OR_RETURN(node->loop_, EventLoop::Create(std::move(loop_options)));
  node->timers_ = std::make_unique<LoopTimers>(node->loop_.get());

  RETURN_IF_ERROR(MakeDir(c.data_dir));
  ASSIGN_OR_RETURN(node->store_notifier_,
                   Notifier::Create(node->loop_.get(), [self] { self->store_->PollCompletions(); }));
  storage::SqliteLogStoreOptions store_options;
  store_options.path = c.data_dir + "/blixard.db";
  Notifier* notifier = node->store_notifier_.get();
  store_options.wakeup = [notifier] { notifier->Notify(); };
  ASSIGN_OR_RETURN(node->store_, storage::SqliteLogStore::Open(std::move(store_options)));

  TcpTransportOptions transport_options;
  transport_options.cluster_id = cluster_id;
  transport_options.self = c.id;
  transport_options.listen = c.listen_peer;
  transport_options.logger = logger;
  // Decorrelates reconnect jitter across nodes and restarts.
  transport_options.seed = StableHash64(absl::StrCat(c.id.value(), ":", node->loop_->clock().NowMicros()));
  ASSIGN_OR_RETURN(node->transport_, TcpTransport::Create(node->loop_.get(), transport_options));
  for (const auto& [id, address] : c.initial_cluster) {
    // Port 0: the peer's address is learned later (AddPeer).
    if (id == c.id || address.port == 0) continue;
    RETURN_IF_ERROR(node->transport_->AddPeer(id, address));
  }

  // Clients are served only once Run() runs the loop, when the Host is up;
  // bound first so the Host knows the client port it advertises.
  ApiServerOptions api_options;
  api_options.listen = c.listen_client;
  api_options.logger = logger;
  api_options.name = absl::StrCat("n", c.id.value(), " api");
  ASSIGN_OR_RETURN(
      node->api_,
      ApiServer::Create(node->loop_.get(), std::move(api_options),
                        ServeWithNodeStatus([self](const api::NodeStatusRequest& request) {
                                              return self->Status(request);
                                            },
                                            [self](api::ClientRequest request, ClientReplyFn reply) {
                                              if (absl::string_view op = NodeOnlyOperation(request);
                                                  !op.empty()) {
                                                api::ClientResponse refused;
                                                refused.set_status(
                                                    api::ClientResponse::STATUS_REJECTED);
                                                refused.set_error(absl::StrCat(
                                                    op, " is sent by the cluster's nodes, "
                                                        "not by clients"));
                                                reply(refused);
                                                return;
                                              }
                                              self->host_->Submit(std::move(request),
                                                                  std::move(reply));
                                            })));
  host::HostOptions options;
  if (c.worker) {
    ProcessExecutorOptions exec_options;
    exec_options.data_dir = c.data_dir + "/exec";
    exec_options.cgroup_root = c.cgroup_root;
    exec_options.vm_driver = c.vm_driver;
    exec_options.vm_powerdown_grace_us = c.vm_powerdown_grace_us;
    exec_options.logger = logger;
    ASSIGN_OR_RETURN(std::unique_ptr<ProcessExecutor> executor,
                     ProcessExecutor::Create(node->loop_.get(), std::move(exec_options)));
    ASSIGN_OR_RETURN(cluster::Resources detected, DetectResources(c.data_dir));
    cluster::RegisterWorker worker;
    worker.set_node_id(c.id.value());
    *worker.mutable_capacity() = LessReserve(detected, c.reserve);
    for (const std::string& feature : c.features) worker.add_features(feature);
    logger->Info("n", c.id.value(), " is a worker: ", worker.capacity().cpu_cores(), " cores, ",
                 worker.capacity().memory_mb(), " MiB, ", worker.capacity().disk_gb(),
                 " GiB after reserves; tasks isolated by ", executor->isolation().description);
    options.worker = std::move(worker);
    node->executor_ = std::move(executor);
  } else {
    node->executor_ = std::make_unique<NoWorkExecutor>();
  }
  options.id = c.id;
  options.cluster_id = cluster_id;
  options.initial_cluster_state = c.initial_cluster_state;
  for (const auto& [id, address] : c.initial_cluster) options.initial_voters.push_back(id);
  options.tick_us = c.tick_us;
  options.election_ticks = c.election_ticks;
  options.heartbeat_ticks = c.heartbeat_ticks;
  options.snapshot_interval_entries = c.snapshot_interval_entries;
  options.log_retain_entries = c.log_retain_entries;
  // Each process draws its own seed (election timeouts, store nonce,
  // stream ids): the clock's reading and the process id differ every time.
  options.raft_seed =
      StableHash64(absl::StrCat(c.id.value(), ":", node->loop_->clock().NowMicros(), ":", getpid()));
  options.digest_interval_entries = 0;  // no observer consumes digests yet
  {
    const SocketAddress& peer = c.initial_cluster.at(c.id);
    options.advertise_peer_address = absl::StrCat(
        peer.host, ":", peer.port != 0 ? peer.port : node->transport_->listen_port());
    options.advertise_client_address = absl::StrCat(
        c.advertise_client.host.empty() ? c.listen_client.host : c.advertise_client.host, ":",
        c.advertise_client.port != 0 ? c.advertise_client.port : node->api_->port());
    if (options.worker.has_value()) options.worker->set_address(options.advertise_client_address);
  }
  RETURN_IF_ERROR(options.Validate());
  Env env;
  env.clock = &node->loop_->clock();
  env.timers = node->timers_.get();
  env.transport = node->transport_.get();
  env.log_store = node->store_.get();
  env.executor = node->executor_.get();
  node->host_ = std::make_unique<host::Host>(std::move(options), env, logger, &node->observer_);
  RETURN_IF_ERROR(node->host_->Start());
  if (node->removed_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node ", c.id.value(), " was removed from the cluster (conf change at index ",
        node->removed_index_.value(), "); its data dir '", c.data_dir,
        "' cannot rejoin: add the machine as a new member (new id, empty data dir)"));
  }
  node->cluster_id_ = cluster_id;

  logger->Info("n", c.id.value(), " runs: cluster ", absl::Hex(cluster_id, absl::kZeroPad16),
               ", peers on ", c.listen_peer.host, ":", node->transport_->listen_port(),
               ", clients on ", c.listen_client.host, ":", node->api_->port(),
               ", data in ", c.data_dir);
  return node;
}

NodeRuntime::~NodeRuntime() {
  // Clients first (no call reaches a Host going away), then the Host (it
  // holds the Env); members then go in reverse order of declaration.
  api_.reset();
  host_.reset();
}

api::NodeStatus NodeRuntime::Status(const api::NodeStatusRequest& request) const {
  api::NodeStatus status;
  status.set_node_id(config_.id.value());
  status.set_cluster_id(cluster_id_);
  if (host_ != nullptr && host_->booted()) {
    switch (host_->role()) {
      case host::NodeRole::kFollower:
        status.set_role(api::NodeStatus::ROLE_FOLLOWER);
        break;
      case host::NodeRole::kPreCandidate:
        status.set_role(api::NodeStatus::ROLE_PRE_CANDIDATE);
        break;
      case host::NodeRole::kCandidate:
        status.set_role(api::NodeStatus::ROLE_CANDIDATE);
        break;
      case host::NodeRole::kLeader:
        status.set_role(api::NodeStatus::ROLE_LEADER);
        break;
      case host::NodeRole::kLearner:
        status.set_role(api::NodeStatus::ROLE_LEARNER);
        break;
    }
    status.set_term(host_->term().value());
    status.set_leader_id(host_->leader().value());
    status.set_commit_index(host_->commit_index().value());
    status.set_applied_index(host_->applied_index().value());
    if (request.with_digest()) status.set_state_digest(host_->state_machine().Digest());
  }
  if (api_ != nullptr) {
    status.set_client_address(absl::StrCat(config_.listen_client.host, ":", api_->port()));
  }
  return status;
}

void NodeRuntime::Run() { loop_->Run(); }

absl::Status NodeRuntime::AddPeer(NodeId id, SocketAddress address) {
  // Replaces what the member records said (the address a peer had in an
  // earlier run may be stale).
  transport_->RemovePeer(id);
  return transport_->AddPeer(id, std::move(address));
}

void NodeRuntime::SyncPeers(const ClusterStateMachine& sm) {
  for (const auto& [member_id, member] : sm.members()) {
    const NodeId id(member.node_id());
    // Removed members stay peers the transport knows, if it did: they are
    // told they were removed when they call.
    if (id == config_.id || member.peer_address().empty() ||
        member.role() == cluster::MEMBER_ROLE_REMOVED || transport_->peer_state(id).has_value()) {
      continue;
    }
    absl::StatusOr<SocketAddress> address = ParseSocketAddress(member.peer_address());
    absl::Status added = address.ok() ? transport_->AddPeer(id, *address) : address.status();
    if (added.ok()) {
      logger_->Info("n", config_.id.value(), " learned member ", id.value(), " at ",
                    member.peer_address());
    } else {
      logger_->Error("n", config_.id.value(), " cannot reach member ", id.value(), " at '",
                     member.peer_address(), "': ", added.ToString());
    }
  }
}

void NodeRuntime::OnRemoved(Index index) {
  if (removed_) return;
  removed_ = true;
  removed_index_ = index;
  logger_->Error("n", config_.id.value(), " was removed from the cluster (conf change at index ",
                 index.value(), "): stopping for good");
  // Not from inside the Host's callback: the stop closes client
  // connections that the Host may still be answering.
  loop_->Post([this] { Stop(); });
}

void NodeRuntime::Stop() {
  // Stop taking new client calls at once; the loop then returns.
  if (api_ != nullptr) api_->Stop();
  loop_->Stop();
}

}  // namespace blixard::net
