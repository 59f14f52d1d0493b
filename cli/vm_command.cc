#include "cli/vm_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/client_flags.h"
#include "core/proto/cluster.pb.h"

ABSL_FLAG(std::string, vm_image, "", "create: the base image (a path on the workers)");
ABSL_FLAG(uint64_t, vm_vcpus, 1, "create: virtual CPUs (reserved as cores on the worker)");
ABSL_FLAG(uint64_t, vm_memory_mb, 512, "create: memory, MiB");
ABSL_FLAG(uint64_t, vm_disk_gb, 1, "create: the overlay disk's size, GiB");
ABSL_FLAG(std::string, vm_features, "", "create: required worker features, comma-separated");
ABSL_FLAG(bool, vm_start, false, "create: start it at once (desired state running)");
ABSL_FLAG(uint64_t, vm_to, 0, "migrate: the target worker (0: the best fit among the others)");

namespace blixard::cli {
namespace {

constexpr char kRow[] = "%-20s %-8s %-9s %-7s %-4s %-6s %-7s %s";

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "blixard vm: %s\nusage: blixard vm create NAME --image=PATH [--vcpus=N] "
               "[--memory_mb=M] [--disk_gb=D] [--features=F,G] [--start] | start NAME | stop NAME "
               "| delete NAME | migrate NAME [--to=WORKER] | list | get NAME\n",
               why.c_str());
  return kExitUsage;
}

int Fail(const absl::Status& status) { return ReportFailure("vm", status); }

std::string Lower(absl::string_view name, absl::string_view prefix) {
  std::string out(absl::StripPrefix(name, prefix));
  absl::AsciiStrToLower(&out);
  return out;
}

std::string Row(const cluster::VmRecord& vm) {
  return absl::StrFormat(
      kRow, vm.name(), Lower(cluster::VmDesiredState_Name(vm.desired()), "VM_DESIRED_"),
      vm.observed() == cluster::VM_OBSERVED_UNSPECIFIED
          ? "-"
          : Lower(cluster::VmObservedState_Name(vm.observed()), "VM_"),
      vm.worker_id() == 0 ? "-" : absl::StrCat(vm.worker_id()), absl::StrCat(vm.generation()),
      absl::StrCat(vm.spec().vcpus()), absl::StrCat(vm.spec().memory_mb()), vm.spec().image());
}

int Print(const std::vector<cluster::VmRecord>& vms, Output output, bool array) {
  if (output == Output::kJson) {
    std::vector<std::string> json;
    for (const cluster::VmRecord& vm : vms) json.push_back(ProtoJson(vm));
    std::printf(array ? "[%s]\n" : "%s\n", absl::StrJoin(json, ",").c_str());
    return kExitOk;
  }
  std::printf("%s\n",
              absl::StrFormat(kRow, "NAME", "DESIRED", "OBSERVED", "WORKER", "GEN", "VCPUS",
                              "MEM_MB", "IMAGE")
                  .c_str());
  for (const cluster::VmRecord& vm : vms) std::printf("%s\n", Row(vm).c_str());
  return kExitOk;
}

int RunVm(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("which operation?");
  const std::string& op = args[0];
  absl::StatusOr<Output> output = OutputFormat();
  if (!output.ok()) return Usage(std::string(output.status().message()));
  const bool named = op == "create" || op == "start" || op == "stop" || op == "delete" ||
                     op == "migrate" || op == "get";
  if (!named && op != "list") return Usage(absl::StrCat("unknown operation '", op, "'"));
  if (named && args.size() != 2) return Usage(absl::StrCat("'", op, "' takes one VM name"));
  if (!named && args.size() != 1) return Usage("'list' takes no arguments");
  const std::string name = named ? args[1] : "";

  cluster::Command command;
  if (op == "create") {
    if (absl::GetFlag(FLAGS_vm_image).empty()) return Usage("'create' needs --image=PATH");
    cluster::CreateVm& create = *command.mutable_create_vm();
    create.set_name(name);
    cluster::VmSpec& spec = *create.mutable_spec();
    spec.set_image(absl::GetFlag(FLAGS_vm_image));
    spec.set_vcpus(absl::GetFlag(FLAGS_vm_vcpus));
    spec.set_memory_mb(absl::GetFlag(FLAGS_vm_memory_mb));
    spec.set_disk_gb(absl::GetFlag(FLAGS_vm_disk_gb));
    for (absl::string_view f :
         absl::StrSplit(absl::GetFlag(FLAGS_vm_features), ',', absl::SkipWhitespace())) {
      spec.add_features(std::string(absl::StripAsciiWhitespace(f)));
    }
  } else if (op == "start") {
    command.mutable_start_vm()->set_name(name);
  } else if (op == "stop") {
    command.mutable_stop_vm()->set_name(name);
  } else if (op == "delete") {
    command.mutable_delete_vm()->set_name(name);
  } else if (op == "migrate") {
    command.mutable_migrate_vm()->set_name(name);
    command.mutable_migrate_vm()->set_target_worker_id(absl::GetFlag(FLAGS_vm_to));
  }
  absl::StatusOr<std::unique_ptr<net::Client>> client = MakeClient();
  if (!client.ok()) return Usage(std::string(client.status().message()));

  if (op == "list" || op == "get") {
    cluster::Query query;
    if (op == "list") {
      query.mutable_list_vms();
    } else {
      query.set_get_vm(name);
    }
    absl::StatusOr<cluster::QueryResult> result = QueryOk(**client, std::move(query));
    if (!result.ok()) return Fail(result.status());
    return Print({result->vms().begin(), result->vms().end()}, *output, op == "list");
  }
  absl::StatusOr<cluster::Result> result = WriteOk(**client, command);
  if (!result.ok()) return Fail(result.status());
  if (op == "create" && absl::GetFlag(FLAGS_vm_start)) {
    cluster::Command start;
    start.mutable_start_vm()->set_name(name);
    result = WriteOk(**client, std::move(start));
    if (!result.ok()) return Fail(result.status());
  }
  if (op == "delete") {
    if (*output == Output::kJson) {
      std::printf("{\"name\":%s,\"deleted\":true}\n", JsonString(name).c_str());
    } else {
      std::printf("vm %s deleted\n", name.c_str());
    }
    return kExitOk;
  }
  return Print({result->vm()}, *output, false);
}

}  // namespace

const Command& VmCommand() {
  static const Command* const command = new Command{
      "vm",
      "create, start, stop, delete, migrate and list VMs",
      "create NAME --image=PATH [...] | start NAME | stop NAME | delete NAME | migrate NAME "
      "[--to=WORKER] | list | get NAME",
      {EndpointsFlag(), TimeoutFlag(), OutputFlag(), BindFlag("image", FLAGS_vm_image),
       BindFlag("vcpus", FLAGS_vm_vcpus), BindFlag("memory_mb", FLAGS_vm_memory_mb),
       BindFlag("disk_gb", FLAGS_vm_disk_gb), BindFlag("features", FLAGS_vm_features),
       BindFlag("start", FLAGS_vm_start), BindFlag("to", FLAGS_vm_to)},
      &RunVm};
  return *command;
}

}  // namespace blixard::cli
