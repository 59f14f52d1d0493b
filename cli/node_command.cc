#include "cli/node_command.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/logger.h"
#include "core/base/status_macros.h"
#include "google/protobuf/text_format.h"
#include "net/node/node_config.pb.h"
#include "net/node/node_runtime.h"

ABSL_FLAG(uint64_t, node_id, 0, "this node's id (1 or more), as in --initial_cluster");
ABSL_FLAG(std::string, node_data_dir, "", "directory of this node's store (created if missing)");
ABSL_FLAG(std::string, node_listen_peer, "127.0.0.1:2380", "HOST:PORT where peers connect");
ABSL_FLAG(std::string, node_listen_client, "127.0.0.1:2379", "HOST:PORT where clients connect");
ABSL_FLAG(std::string, node_initial_cluster, "",
          "every member's peer address: 1=HOST:PORT,2=HOST:PORT,... (this node's included)");
ABSL_FLAG(std::string, node_initial_cluster_state, "new",
          "new: an empty store bootstraps the cluster; existing: it waits to be added");
ABSL_FLAG(std::string, node_cluster_token, "blixard",
          "names the cluster (distinct per cluster): stores and peers of another are refused");
ABSL_FLAG(std::string, node_cluster_id, "",
          "the cluster id in hex, as `blixard member add` prints it (instead of --cluster_token)");
ABSL_FLAG(std::string, node_advertise_client, "",
          "HOST:PORT where clients reach this node, as recorded in the member list "
          "(default: --listen_client with the port bound)");
ABSL_FLAG(bool, node_worker, true, "run tasks on this node (register it as a worker)");
ABSL_FLAG(std::string, node_features, "", "this worker's features, comma-separated: gpu,ssd");
ABSL_FLAG(uint64_t, node_reserve_cpu, 0, "cores kept back from the detected ones");
ABSL_FLAG(uint64_t, node_reserve_memory_mb, 512, "MiB kept back from the detected memory");
ABSL_FLAG(uint64_t, node_reserve_disk_gb, 1, "GiB kept back from the data dir's free space");
ABSL_FLAG(std::string, node_cgroup_root, "",
          "a delegated cgroup v2 directory for task limits (default: rlimits only)");
ABSL_FLAG(std::string, node_vm_driver, "auto",
          "how VMs run: qemu, process (a placeholder process, no isolation) or auto "
          "(qemu when installed)");
ABSL_FLAG(uint64_t, node_vm_powerdown_grace_ms, 30000,
          "stopping a VM: how long the guest gets to power down before QEMU quits");
ABSL_FLAG(uint64_t, node_tick_ms, 100, "Raft tick, milliseconds");
ABSL_FLAG(int, node_election_ticks, 10, "ticks without a leader before an election");
ABSL_FLAG(int, node_heartbeat_ticks, 1, "ticks between a leader's heartbeats");
ABSL_FLAG(uint64_t, node_snapshot_interval, 10000, "take a snapshot every this many applied entries");
ABSL_FLAG(uint64_t, node_log_retain, 1000,
          "entries kept below a snapshot for followers that lag a little");
ABSL_FLAG(std::string, node_config, "",
          "read every setting from this text-proto file (NodeConfigFile) instead of flags");
ABSL_FLAG(std::string, node_log_level, "info", "debug, info, warning or error");

namespace blixard::cli {
namespace {

using net::NodeConfig;

absl::StatusOr<host::InitialClusterState> ParseState(const std::string& text) {
  if (text == "new") return host::InitialClusterState::kNew;
  if (text == "existing") return host::InitialClusterState::kExisting;
  return absl::InvalidArgumentError(
      absl::StrCat("initial cluster state '", text, "' is neither new nor existing"));
}

absl::StatusOr<NodeConfig> ConfigFrom(const net::NodeConfigFile& file) {
  NodeConfig config;
  config.id = NodeId(file.id());
  config.cluster_token = file.cluster_token();
  config.data_dir = file.data_dir();
  ASSIGN_OR_RETURN(config.listen_peer, net::ParseSocketAddress(file.listen_peer()));
  ASSIGN_OR_RETURN(config.listen_client, net::ParseSocketAddress(file.listen_client()));
  ASSIGN_OR_RETURN(config.initial_cluster, net::ParseInitialCluster(file.initial_cluster()));
  ASSIGN_OR_RETURN(config.initial_cluster_state, ParseState(file.initial_cluster_state()));
  if (!file.cluster_id().empty()) {
    if (!file.cluster_token().empty() && file.cluster_token() != "blixard") {
      return absl::InvalidArgumentError("set the cluster token or the cluster id, not both");
    }
    if (!absl::SimpleHexAtoi(file.cluster_id(), &config.cluster_id) || config.cluster_id == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cluster id '", file.cluster_id(), "' is not a non-zero hexadecimal number"));
    }
  }
  if (file.has_worker()) config.worker = file.worker();
  for (absl::string_view feature : absl::StrSplit(file.features(), ',', absl::SkipWhitespace())) {
    config.features.emplace_back(absl::StripAsciiWhitespace(feature));
  }
  if (file.has_reserve_cpu()) config.reserve.cpu_cores = file.reserve_cpu();
  if (file.has_reserve_memory_mb()) config.reserve.memory_mb = file.reserve_memory_mb();
  if (file.has_reserve_disk_gb()) config.reserve.disk_gb = file.reserve_disk_gb();
  config.cgroup_root = file.cgroup_root();
  if (!file.vm_driver().empty()) {
    if (file.vm_driver() != "qemu" && file.vm_driver() != "process" && file.vm_driver() != "auto") {
      return absl::InvalidArgumentError(absl::StrCat(
          "vm driver '", file.vm_driver(), "' is none of qemu, process, auto"));
    }
    config.vm_driver = file.vm_driver();
  }
  if (file.vm_powerdown_grace_ms() != 0) {
    if (file.vm_powerdown_grace_ms() > 600'000) {
      return absl::InvalidArgumentError("vm_powerdown_grace_ms above 600000");
    }
    config.vm_powerdown_grace_us = static_cast<int64_t>(file.vm_powerdown_grace_ms()) * 1000;
  }
  if (!file.advertise_client().empty()) {
    ASSIGN_OR_RETURN(config.advertise_client, net::ParseSocketAddress(file.advertise_client()));
  }
  if (file.tick_ms() != 0) {
    if (file.tick_ms() > 60'000) {
      return absl::InvalidArgumentError(absl::StrCat("tick_ms ", file.tick_ms(), " above 60000"));
    }
    config.tick_us = static_cast<int64_t>(file.tick_ms()) * 1000;
  }
  if (file.election_ticks() != 0) config.election_ticks = static_cast<int>(file.election_ticks());
  if (file.heartbeat_ticks() != 0) config.heartbeat_ticks = static_cast<int>(file.heartbeat_ticks());
  if (file.snapshot_interval() != 0) config.snapshot_interval_entries = file.snapshot_interval();
  if (file.log_retain() != 0) config.log_retain_entries = file.log_retain();
  return config;
}

net::NodeConfigFile FileFromFlags() {
  net::NodeConfigFile file;
  file.set_id(absl::GetFlag(FLAGS_node_id));
  file.set_cluster_token(absl::GetFlag(FLAGS_node_cluster_token));
  file.set_cluster_id(absl::GetFlag(FLAGS_node_cluster_id));
  file.set_advertise_client(absl::GetFlag(FLAGS_node_advertise_client));
  file.set_worker(absl::GetFlag(FLAGS_node_worker));
  file.set_features(absl::GetFlag(FLAGS_node_features));
  file.set_reserve_cpu(absl::GetFlag(FLAGS_node_reserve_cpu));
  file.set_reserve_memory_mb(absl::GetFlag(FLAGS_node_reserve_memory_mb));
  file.set_reserve_disk_gb(absl::GetFlag(FLAGS_node_reserve_disk_gb));
  file.set_cgroup_root(absl::GetFlag(FLAGS_node_cgroup_root));
  file.set_vm_driver(absl::GetFlag(FLAGS_node_vm_driver));
  file.set_vm_powerdown_grace_ms(absl::GetFlag(FLAGS_node_vm_powerdown_grace_ms));
  file.set_data_dir(absl::GetFlag(FLAGS_node_data_dir));
  file.set_listen_peer(absl::GetFlag(FLAGS_node_listen_peer));
  file.set_listen_client(absl::GetFlag(FLAGS_node_listen_client));
  file.set_initial_cluster(absl::GetFlag(FLAGS_node_initial_cluster));
  file.set_initial_cluster_state(absl::GetFlag(FLAGS_node_initial_cluster_state));
  file.set_tick_ms(absl::GetFlag(FLAGS_node_tick_ms));
  file.set_election_ticks(static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_node_election_ticks))));
  file.set_heartbeat_ticks(static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_node_heartbeat_ticks))));
  file.set_snapshot_interval(absl::GetFlag(FLAGS_node_snapshot_interval));
  file.set_log_retain(absl::GetFlag(FLAGS_node_log_retain));
  return file;
}

absl::StatusOr<net::NodeConfigFile> ReadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  net::NodeConfigFile file;
  if (!google::protobuf::TextFormat::ParseFromString(text.str(), &file)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file '", path, "' is not a NodeConfigFile text proto"));
  }
  return file;
}

// The node flags the user set besides --config and --log_level (--config
// excludes the others): those whose value is not their default.
std::vector<std::string> NodeFlagsSet() {
  std::vector<std::string> set;
  for (const CommandFlag& bound : NodeCommand().flags) {
    if (bound.name == "config" || bound.name == "log_level") continue;
    if (bound.flag->CurrentValue() != bound.flag->DefaultValue()) {
      set.push_back(std::string(bound.name));
    }
  }
  return set;
}

LogLevel ParseLevel(const std::string& text, bool* ok) {
  *ok = true;
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warning") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  *ok = false;
  return LogLevel::kInfo;
}

int RunNode(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "blixard node: takes no arguments (got '%s')\n", args[0].c_str());
    return kExitUsage;
  }
  bool level_ok = false;
  const LogLevel level = ParseLevel(absl::GetFlag(FLAGS_node_log_level), &level_ok);
  if (!level_ok) {
    std::fprintf(stderr, "blixard node: --log_level '%s' is not debug, info, warning or error\n",
                 absl::GetFlag(FLAGS_node_log_level).c_str());
    return kExitUsage;
  }
  net::NodeConfigFile file;
  const std::string config_path = absl::GetFlag(FLAGS_node_config);
  if (!config_path.empty()) {
    const std::vector<std::string> also = NodeFlagsSet();
    if (!also.empty()) {
      std::fprintf(stderr, "blixard node: --config excludes the other settings (found --%s)\n",
                   also.front().c_str());
      return kExitUsage;
    }
    absl::StatusOr<net::NodeConfigFile> read = ReadConfigFile(config_path);
    if (!read.ok()) {
      std::fprintf(stderr, "blixard node: %s\n", std::string(read.status().message()).c_str());
      return kExitUsage;
    }
    file = *std::move(read);
  } else {
    file = FileFromFlags();
  }
  absl::StatusOr<NodeConfig> config = ConfigFrom(file);
  if (!config.ok()) {
    std::fprintf(stderr, "blixard node: %s\n", std::string(config.status().message()).c_str());
    return kExitUsage;
  }
  StderrLogger logger(level, absl::StrCat("n", config->id.value(), " "));
  absl::StatusOr<std::unique_ptr<net::NodeRuntime>> node =
      net::NodeRuntime::Start(*std::move(config), &logger);
  if (!node.ok()) {
    std::fprintf(stderr, "blixard node: %s\n", node.status().ToString().c_str());
    // Refusals that change nothing are the operator's to fix: usage.
    const absl::StatusCode code = node.status().code();
    const bool usage = code == absl::StatusCode::kInvalidArgument ||
                       code == absl::StatusCode::kFailedPrecondition ||
                       code == absl::StatusCode::kAlreadyExists ||
                       code == absl::StatusCode::kPermissionDenied ||
                       code == absl::StatusCode::kUnavailable;
    return usage ? kExitUsage : kExitFailure;
  }
  (*node)->Run();
  const bool removed = (*node)->removed();
  const uint64_t removed_index = (*node)->removed_index().value();
  node->reset();  // the store makes queued writes durable, then closes
  if (removed) {
    std::fprintf(stderr,
                 "blixard node: this node was removed from the cluster (conf change at index "
                 "%llu): stopped for good\n",
                 static_cast<unsigned long long>(removed_index));
  }
  logger.Info("stopped");
  return kExitOk;
}

}  // namespace

const Command& NodeCommand() {
  static const Command* const command = new Command{
      "node",
      "run a production node until SIGTERM/SIGINT",
      "",
      {
          BindFlag("id", FLAGS_node_id),
          BindFlag("data_dir", FLAGS_node_data_dir),
          BindFlag("listen_peer", FLAGS_node_listen_peer),
          BindFlag("listen_client", FLAGS_node_listen_client),
          BindFlag("initial_cluster", FLAGS_node_initial_cluster),
          BindFlag("initial_cluster_state", FLAGS_node_initial_cluster_state),
          BindFlag("cluster_token", FLAGS_node_cluster_token),
          BindFlag("cluster_id", FLAGS_node_cluster_id),
          BindFlag("advertise_client", FLAGS_node_advertise_client),
          BindFlag("worker", FLAGS_node_worker),
          BindFlag("features", FLAGS_node_features),
          BindFlag("reserve_cpu", FLAGS_node_reserve_cpu),
          BindFlag("reserve_memory_mb", FLAGS_node_reserve_memory_mb),
          BindFlag("reserve_disk_gb", FLAGS_node_reserve_disk_gb),
          BindFlag("cgroup_root", FLAGS_node_cgroup_root),
          BindFlag("vm_driver", FLAGS_node_vm_driver),
          BindFlag("vm_powerdown_grace_ms", FLAGS_node_vm_powerdown_grace_ms),
          BindFlag("tick_ms", FLAGS_node_tick_ms),
          BindFlag("election_ticks", FLAGS_node_election_ticks),
          BindFlag("heartbeat_ticks", FLAGS_node_heartbeat_ticks),
          BindFlag("snapshot_interval", FLAGS_node_snapshot_interval),
          BindFlag("log_retain", FLAGS_node_log_retain),
          BindFlag("config", FLAGS_node_config),
          BindFlag("log_level", FLAGS_node_log_level),
      },
      &RunNode};
  return *command;
}

}  // namespace blixard::cli
