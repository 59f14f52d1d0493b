#include "cli/worker_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/client_flags.h"
#include "core/proto/api.pb.h"

namespace blixard::cli {
namespace {

constexpr char kTableFormat[] = "%-6s %-9s %-9s %-13s %-11s %-16s %s";

int Usage(const std::string& why) {
  std::fprintf(stderr, "blixard worker: %s\nusage: blixard worker list | drain ID | undrain ID\n",
               why.c_str());
  return kExitUsage;
}

int Fail(const absl::Status& status) { return ReportFailure("worker", status); }

std::string Used(uint64_t reserved, uint64_t capacity) {
  return absl::StrCat(reserved, "/", capacity);
}

int List(net::Client& client, Output output) {
  cluster::Query query;
  query.mutable_list_workers();
  absl::StatusOr<cluster::QueryResult> result = QueryOk(client, std::move(query));
  if (!result.ok()) return Fail(result.status());
  if (output == Output::kJson) {
    std::vector<std::string> json;
    for (const cluster::WorkerRecord& w : result->workers()) json.push_back(ProtoJson(w));
    std::printf("[%s]\n", absl::StrJoin(json, ",").c_str());
    return kExitOk;
  }
  std::printf("%s\n", absl::StrFormat(kTableFormat, "ID", "STATUS", "CPU", "MEM_MB", "DISK_GB",
                                      "FEATURES", "ADDRESS")
                          .c_str());
  for (const cluster::WorkerRecord& w : result->workers()) std::printf("%s\n", WorkerRow(w).c_str());
  return kExitOk;
}

// drain: ONLINE or BUSY -> DRAINING; undrain: DRAINING -> ONLINE.
int SetStatus(net::Client& client, uint64_t id, bool drain, Output output) {
  const cluster::WorkerStatus to = drain ? cluster::WORKER_DRAINING : cluster::WORKER_ONLINE;
  cluster::Query query;
  query.set_get_worker(id);
  absl::StatusOr<cluster::QueryResult> read = QueryOk(client, std::move(query));
  if (!read.ok()) return Fail(read.status());
  if (read->workers_size() != 1) {
    return Fail(absl::InternalError(absl::StrCat("get_worker answered ", read->workers_size(),
                                                 " workers")));
  }
  cluster::WorkerRecord worker = read->workers(0);
  const cluster::WorkerStatus from = worker.status();
  if (from != to) {
    if (!drain && from != cluster::WORKER_DRAINING) {
      std::fprintf(stderr,
                   "blixard worker: worker %llu is %s, not draining: undrain only ends a drain\n",
                   static_cast<unsigned long long>(id), WorkerStatusName(from).c_str());
      return kExitFailure;
    }
    api::ClientRequest request;
    cluster::SetWorkerStatus& set = *request.mutable_command()->mutable_set_worker_status();
    set.set_node_id(id);
    set.set_status(to);
    absl::StatusOr<api::ClientResponse> response = CallOk(client, std::move(request));
    if (!response.ok()) return Fail(response.status());
    const cluster::Result& result = response->result();
    if (result.code() != cluster::RESULT_OK) return Fail(Refusal(result.code(), result.message()));
    worker = result.worker();
  }
  if (output == Output::kJson) {
    std::printf("%s\n", ProtoJson(worker).c_str());
  } else {
    std::printf("worker %llu %s %s\n", static_cast<unsigned long long>(id),
                from == to ? "is already" : "is now", WorkerStatusName(worker.status()).c_str());
  }
  return kExitOk;
}

int RunWorker(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("which operation?");
  const std::string& op = args[0];
  absl::StatusOr<Output> output = OutputFormat();
  if (!output.ok()) return Usage(std::string(output.status().message()));
  uint64_t id = 0;
  if (op == "list") {
    if (args.size() != 1) return Usage("'list' takes no arguments");
  } else if (op == "drain" || op == "undrain") {
    if (args.size() != 2 || !absl::SimpleAtoi(args[1], &id) || id == 0) {
      return Usage(absl::StrCat("'", op, "' takes one worker id (1 or more)"));
    }
  } else {
    return Usage(absl::StrCat("unknown operation '", op, "'"));
  }
  absl::StatusOr<std::unique_ptr<net::Client>> client = MakeClient();
  if (!client.ok()) return Usage(std::string(client.status().message()));
  if (op == "list") return List(**client, *output);
  return SetStatus(**client, id, op == "drain", *output);
}

}  // namespace

std::string WorkerStatusName(cluster::WorkerStatus status) {
  std::string name(absl::StripPrefix(cluster::WorkerStatus_Name(status), "WORKER_"));
  absl::AsciiStrToLower(&name);
  return name;
}

std::string WorkerRow(const cluster::WorkerRecord& w) {
  const cluster::Resources& capacity = w.capacity();
  const cluster::Resources& reserved = w.reserved();
  return absl::StrFormat(
      kTableFormat, absl::StrCat(w.node_id()), WorkerStatusName(w.status()),
      Used(reserved.cpu_cores(), capacity.cpu_cores()),
      Used(reserved.memory_mb(), capacity.memory_mb()), Used(reserved.disk_gb(), capacity.disk_gb()),
      w.features().empty() ? "-" : absl::StrJoin(w.features(), ","),
      w.address().empty() ? "-" : w.address());
}

const Command& WorkerCommand() {
  static const Command* const command = new Command{
      "worker",
      "list the workers (reserved/capacity), drain a worker or undrain it",
      "list | drain ID | undrain ID\n\n"
      "drain: the worker takes no new work; its tasks finish and its VMs move away.\n"
      "undrain: a draining worker takes work again.",
      {EndpointsFlag(), TimeoutFlag(), OutputFlag()},
      &RunWorker};
  return *command;
}

}  // namespace blixard::cli
