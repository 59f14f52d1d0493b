#include "cli/cluster_command.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/client_flags.h"
#include "core/proto/api.pb.h"

ABSL_FLAG(bool, cluster_digest, false,
          "also each node's state digest (O(state) on each node): replicas at the same applied "
          "index must show the same one");

namespace blixard::cli {
namespace {

std::string RoleName(api::NodeStatus::Role role) {
  std::string name(absl::StripPrefix(api::NodeStatus::Role_Name(role), "ROLE_"));
  absl::AsciiStrToLower(&name);
  return name;
}

int RunCluster(const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0] != "status") {
    std::fprintf(stderr, "blixard cluster: usage: blixard cluster status\n");
    return kExitUsage;
  }
  absl::StatusOr<Output> output = OutputFormat();
  absl::StatusOr<std::unique_ptr<net::Client>> client =
      output.ok() ? MakeClient() : absl::StatusOr<std::unique_ptr<net::Client>>(output.status());
  if (!client.ok()) {
    std::fprintf(stderr, "blixard cluster: %s\n", std::string(client.status().message()).c_str());
    return kExitUsage;
  }
  std::vector<std::optional<api::NodeStatus>> statuses;
  std::vector<std::string> errors;
  uint64_t max_applied = 0;
  for (size_t i = 0; i < (*client)->endpoint_count(); ++i) {
    absl::StatusOr<api::NodeStatus> status = (*client)->NodeStatusAt(i, absl::GetFlag(FLAGS_cluster_digest));
    if (status.ok()) {
      max_applied = std::max(max_applied, status->applied_index());
      statuses.push_back(*status);
      errors.emplace_back();
    } else {
      statuses.push_back(std::nullopt);
      errors.push_back(std::string(status.status().message()));
    }
  }
  size_t answered = 0;
  std::vector<std::string> json;
  if (*output == Output::kTable) {
    std::printf("%-7s %-22s %-13s %6s %7s %10s %10s %8s%s\n", "MEMBER", "ENDPOINT", "ROLE", "TERM",
                "LEADER", "COMMIT", "APPLIED", "LAG",
                absl::GetFlag(FLAGS_cluster_digest) ? "  DIGEST" : "");
  }
  for (size_t i = 0; i < statuses.size(); ++i) {
    const net::SocketAddress& address = (*client)->endpoint(i);
    const std::string endpoint = absl::StrCat(address.host, ":", address.port);
    if (!statuses[i].has_value()) {
      if (*output == Output::kTable) {
        std::printf("%-7s %-22s unreachable: %s\n", "-", endpoint.c_str(), errors[i].c_str());
      } else {
        json.push_back(absl::StrCat("{\"endpoint\":", JsonString(endpoint),
                                    ",\"error\":", JsonString(errors[i]), "}"));
      }
      continue;
    }
    ++answered;
    const api::NodeStatus& s = *statuses[i];
    const uint64_t lag = max_applied - std::min(max_applied, s.applied_index());
    if (*output == Output::kTable) {
      std::printf("%-7llu %-22s %-13s %6llu %7llu %10llu %10llu %8llu%s\n",
                  static_cast<unsigned long long>(s.node_id()), endpoint.c_str(),
                  RoleName(s.role()).c_str(), static_cast<unsigned long long>(s.term()),
                  static_cast<unsigned long long>(s.leader_id()),
                  static_cast<unsigned long long>(s.commit_index()),
                  static_cast<unsigned long long>(s.applied_index()),
                  static_cast<unsigned long long>(lag),
                  absl::GetFlag(FLAGS_cluster_digest)
                      ? absl::StrCat("  ", absl::Hex(s.state_digest(), absl::kZeroPad16)).c_str()
                      : "");
    } else {
      json.push_back(absl::StrCat(
          "{\"member\":", s.node_id(), ",\"endpoint\":", JsonString(endpoint),
          ",\"role\":", JsonString(RoleName(s.role())), ",\"term\":", s.term(),
          ",\"leader\":", s.leader_id(), ",\"commit\":", s.commit_index(),
          ",\"applied\":", s.applied_index(), ",\"lag\":", lag,
          absl::GetFlag(FLAGS_cluster_digest)
              ? absl::StrCat(",\"digest\":\"", absl::Hex(s.state_digest(), absl::kZeroPad16), "\"")
              : "",
          "}"));
    }
  }
  if (*output == Output::kJson) std::printf("[%s]\n", absl::StrJoin(json, ",").c_str());
  if (answered == 0) return kExitUnavailable;
  return answered == statuses.size() ? kExitOk : kExitFailure;
}

}  // namespace

const Command& ClusterCommand() {
  static const Command* const command =
      new Command{"cluster", "every member's own view: role, term, leader, indexes", "status",
                  {EndpointsFlag(), TimeoutFlag(), OutputFlag(), BindFlag("digest", FLAGS_cluster_digest)},
                  &RunCluster};
  return *command;
}

}  // namespace blixard::cli
