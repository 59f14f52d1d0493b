#include "cli/kv_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/client_flags.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"

namespace blixard::cli {
namespace {

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "blixard kv: %s\nusage: blixard kv put KEY VALUE | get KEY | del KEY | "
               "cas KEY VERSION VALUE\n",
               why.c_str());
  return kExitUsage;
}

// Prints a state machine's refusal ("blixard kv: FAILED_PRECONDITION: ...").
int Refused(cluster::ResultCode code, const std::string& message) {
  std::fprintf(stderr, "blixard kv: %s: %s\n", cluster::ResultCode_Name(code).c_str(),
               message.c_str());
  return kExitFailure;
}

int RunKv(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("which operation?");
  const std::string& op = args[0];
  const size_t want = op == "put" ? 3 : op == "get" || op == "del" ? 2 : op == "cas" ? 4 : 0;
  if (want == 0) return Usage(absl::StrCat("unknown operation '", op, "'"));
  if (args.size() != want) return Usage(absl::StrCat("'", op, "' takes ", want - 1, " arguments"));
  absl::StatusOr<Output> output = OutputFormat();
  if (!output.ok()) return Usage(std::string(output.status().message()));
  uint64_t version = 0;
  if (op == "cas" && !absl::SimpleAtoi(args[2], &version)) {
    return Usage(absl::StrCat("VERSION '", args[2], "' is not a number"));
  }
  absl::StatusOr<std::unique_ptr<net::Client>> client = MakeClient();
  if (!client.ok()) return Usage(std::string(client.status().message()));

  api::ClientRequest request;
  const std::string& key = args[1];
  if (op == "get") {
    request.mutable_query()->set_kv_get(key);
  } else if (op == "put") {
    request.mutable_command()->mutable_kv_put()->set_key(key);
    request.mutable_command()->mutable_kv_put()->set_value(args[2]);
  } else if (op == "del") {
    request.mutable_command()->mutable_kv_delete()->set_key(key);
  } else {
    cluster::KvCompareAndSwap* cas = request.mutable_command()->mutable_kv_compare_and_swap();
    cas->set_key(key);
    cas->set_expected_version(version);
    cas->set_value(args[3]);
  }
  absl::StatusOr<api::ClientResponse> response = (*client)->Call(std::move(request));
  if (!response.ok()) return ReportCallError("kv", response.status());
  if (response->status() != api::ClientResponse::STATUS_OK) {
    std::fprintf(stderr, "blixard kv: refused: %s\n", response->error().c_str());
    return kExitFailure;
  }
  if (op == "get") {
    const cluster::QueryResult& result = response->query_result();
    if (result.code() != cluster::RESULT_OK) return Refused(result.code(), result.message());
    if (*output == Output::kJson) {
      std::printf("{\"key\":%s,\"value\":%s,\"version\":%llu,\"created\":%llu}\n",
                  JsonString(result.kv().key()).c_str(), JsonString(result.kv().value()).c_str(),
                  static_cast<unsigned long long>(result.kv().mod_index()),
                  static_cast<unsigned long long>(result.kv().create_index()));
    } else {
      std::printf("%s\n", result.kv().value().c_str());
    }
    return kExitOk;
  }
  const cluster::Result& result = response->result();
  if (result.code() != cluster::RESULT_OK) return Refused(result.code(), result.message());
  if (*output == Output::kJson) {
    std::printf("{\"ok\":true,\"index\":%llu,\"term\":%llu}\n",
                static_cast<unsigned long long>(response->index()),
                static_cast<unsigned long long>(response->term()));
  } else {
    std::printf("OK (index %llu)\n", static_cast<unsigned long long>(response->index()));
  }
  return kExitOk;
}

}  // namespace

const Command& KvCommand() {
  static const Command* const command =
      new Command{"kv",
                  "put, get, delete or compare-and-swap a key",
                  "put KEY VALUE | get KEY | del KEY | cas KEY VERSION VALUE",
                  {EndpointsFlag(), TimeoutFlag(), OutputFlag()},
                  &RunKv};
  return *command;
}

}  // namespace blixard::cli
