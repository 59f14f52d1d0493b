#include "cli/member_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/client_flags.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"

ABSL_FLAG(bool, member_learner, false, "add: the new member joins as a learner (required)");
ABSL_FLAG(std::string, member_peer_address, "", "add: HOST:PORT where the new member listens for peers");
ABSL_FLAG(uint64_t, member_id, 0, "add: the new member's id (0: the next unused one)");
ABSL_FLAG(std::string, member_data_dir, "",
          "add: the new member's data dir, for the printed command (default blixard-ID)");
ABSL_FLAG(std::string, member_listen_client, "",
          "add: where the new member serves clients, for the printed command "
          "(default: the peer address's host, port 0)");

namespace blixard::cli {
namespace {

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "blixard member: %s\nusage: blixard member list | add --learner "
               "--peer_address=HOST:PORT [--id=N] | promote ID | remove ID\n",
               why.c_str());
  return kExitUsage;
}

std::string RoleName(cluster::MemberRole role) {
  std::string name(absl::StripPrefix(cluster::MemberRole_Name(role), "MEMBER_ROLE_"));
  absl::AsciiStrToLower(&name);
  return name;
}

std::string MemberJson(const cluster::MemberRecord& m) {
  return absl::StrCat("{\"id\":", m.node_id(), ",\"role\":", JsonString(RoleName(m.role())),
                      ",\"peer\":", JsonString(m.peer_address()),
                      ",\"client\":", JsonString(m.client_address()),
                      ",\"store_recorded_at\":", m.joined_index(),
                      ",\"changed_at\":", m.changed_index(), "}");
}

int Failed(const absl::Status& status) { return ReportFailure("member", status); }

absl::StatusOr<std::vector<cluster::MemberRecord>> ListMembers(net::Client& client) {
  cluster::Query query;
  query.mutable_list_members();
  absl::StatusOr<cluster::QueryResult> result = QueryOk(client, std::move(query));
  if (!result.ok()) return result.status();
  return std::vector<cluster::MemberRecord>(result->members().begin(), result->members().end());
}

int List(net::Client& client, Output output) {
  absl::StatusOr<std::vector<cluster::MemberRecord>> members = ListMembers(client);
  if (!members.ok()) return Failed(members.status());
  if (output == Output::kJson) {
    std::vector<std::string> json;
    for (const cluster::MemberRecord& m : *members) json.push_back(MemberJson(m));
    std::printf("[%s]\n", absl::StrJoin(json, ",").c_str());
    return kExitOk;
  }
  std::printf("%-6s %-8s %-22s %-22s %s\n", "ID", "ROLE", "PEER", "CLIENT", "STORE");
  for (const cluster::MemberRecord& m : *members) {
    const std::string store =
        m.store_nonce() == 0 ? "-" : absl::StrCat("recorded at ", m.joined_index());
    std::printf("%-6llu %-8s %-22s %-22s %s\n", static_cast<unsigned long long>(m.node_id()),
                RoleName(m.role()).c_str(), m.peer_address().empty() ? "-" : m.peer_address().c_str(),
                m.client_address().empty() ? "-" : m.client_address().c_str(), store.c_str());
  }
  return kExitOk;
}

// The command the new member must start with: every member's peer address
// the records know, the cluster id from a node's status.
absl::StatusOr<std::string> JoinCommand(net::Client& client, const cluster::MemberRecord& added) {
  absl::StatusOr<std::vector<cluster::MemberRecord>> members = ListMembers(client);
  if (!members.ok()) return members.status();
  uint64_t cluster_id = 0;
  for (size_t i = 0; i < client.endpoint_count() && cluster_id == 0; ++i) {
    absl::StatusOr<api::NodeStatus> status = client.NodeStatusAt(i);
    if (status.ok()) cluster_id = status->cluster_id();
  }
  if (cluster_id == 0) return absl::UnavailableError("no endpoint told the cluster id");
  std::vector<std::string> initial;
  for (const cluster::MemberRecord& m : *members) {
    if (m.role() == cluster::MEMBER_ROLE_REMOVED || m.peer_address().empty()) continue;
    initial.push_back(absl::StrCat(m.node_id(), "=", m.peer_address()));
  }
  const std::string& peer = added.peer_address();
  std::string data_dir = absl::GetFlag(FLAGS_member_data_dir);
  if (data_dir.empty()) data_dir = absl::StrCat("blixard-", added.node_id());
  std::string listen_client = absl::GetFlag(FLAGS_member_listen_client);
  if (listen_client.empty()) listen_client = absl::StrCat(peer.substr(0, peer.rfind(':')), ":0");
  return absl::StrCat("blixard node --id=", added.node_id(), " --cluster_id=",
                      absl::Hex(cluster_id, absl::kZeroPad16), " --data_dir=", data_dir,
                      " --listen_peer=", peer, " --listen_client=", listen_client,
                      " --initial_cluster=", absl::StrJoin(initial, ","),
                      " --initial_cluster_state=existing");
}

int RunMember(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("which operation?");
  const std::string& op = args[0];
  absl::StatusOr<Output> output = OutputFormat();
  if (!output.ok()) return Usage(std::string(output.status().message()));
  api::MemberChangeRequest change;
  if (op == "list") {
    if (args.size() != 1) return Usage("'list' takes no arguments");
  } else if (op == "add") {
    if (args.size() != 1) return Usage("'add' takes flags only (--learner --peer_address=HOST:PORT)");
    if (!absl::GetFlag(FLAGS_member_learner)) {
      return Usage("new members join as learners: pass --learner, then promote it once caught up");
    }
    if (absl::GetFlag(FLAGS_member_peer_address).empty()) return Usage("'add' needs --peer_address");
    change.set_type(api::MemberChangeRequest::TYPE_ADD_LEARNER);
    change.set_node_id(absl::GetFlag(FLAGS_member_id));
    change.set_peer_address(absl::GetFlag(FLAGS_member_peer_address));
  } else if (op == "promote" || op == "remove") {
    uint64_t id = 0;
    if (args.size() != 2 || !absl::SimpleAtoi(args[1], &id) || id == 0) {
      return Usage(absl::StrCat("'", op, "' takes one member id (1 or more)"));
    }
    change.set_type(op == "promote" ? api::MemberChangeRequest::TYPE_PROMOTE
                                    : api::MemberChangeRequest::TYPE_REMOVE);
    change.set_node_id(id);
  } else {
    return Usage(absl::StrCat("unknown operation '", op, "'"));
  }
  absl::StatusOr<std::unique_ptr<net::Client>> client = MakeClient();
  if (!client.ok()) return Usage(std::string(client.status().message()));
  if (op == "list") return List(**client, *output);

  api::ClientRequest request;
  *request.mutable_member_change() = change;
  absl::StatusOr<api::ClientResponse> response = CallOk(**client, std::move(request));
  if (!response.ok()) return Failed(response.status());
  const cluster::Result& result = response->result();
  if (result.code() != cluster::RESULT_OK) return Failed(Refusal(result.code(), result.message()));
  const cluster::MemberRecord& member = result.member();
  std::string join;
  if (op == "add") {
    absl::StatusOr<std::string> command = JoinCommand(**client, member);
    if (!command.ok()) return Failed(command.status());
    join = *command;
  }
  if (*output == Output::kJson) {
    std::printf("{\"member\":%s,\"index\":%llu%s}\n", MemberJson(member).c_str(),
                static_cast<unsigned long long>(response->index()),
                join.empty() ? "" : absl::StrCat(",\"start\":", JsonString(join)).c_str());
    return kExitOk;
  }
  std::printf("member %llu is now %s (conf change at index %llu)\n",
              static_cast<unsigned long long>(member.node_id()), RoleName(member.role()).c_str(),
              static_cast<unsigned long long>(response->index()));
  if (!join.empty()) std::printf("start it with:\n  %s\n", join.c_str());
  return kExitOk;
}

}  // namespace

const Command& MemberCommand() {
  static const Command* const command = new Command{
      "member",
      "list the members, add a learner, promote it, remove a member",
      "list | add --learner --peer_address=HOST:PORT [--id=N] | promote ID | remove ID",
      {EndpointsFlag(), TimeoutFlag(), OutputFlag(), BindFlag("learner", FLAGS_member_learner),
       BindFlag("peer_address", FLAGS_member_peer_address), BindFlag("id", FLAGS_member_id),
       BindFlag("data_dir", FLAGS_member_data_dir),
       BindFlag("listen_client", FLAGS_member_listen_client)},
      &RunMember};
  return *command;
}

}  // namespace blixard::cli
