// The `blixard` binary: `blixard <command> [flags]`. Each command is a library
// of its own (cli/command.h); this file only lists them.
//
// Exit codes: 0 success, 1 the command ran and failed (e.g. a simulation
// found a violation), 2 bad usage (unknown command or flag, bad value).
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/usage.h"
#include "cli/bench_command.h"
#include "cli/check_command.h"
#include "cli/cluster_command.h"
#include "cli/command.h"
#include "cli/dev_command.h"
#include "cli/kv_command.h"
#include "cli/member_command.h"
#include "cli/node_command.h"
#include "cli/sim_command.h"
#include "cli/task_command.h"
#include "cli/version_command.h"
#include "cli/vm_command.h"
#include "cli/worker_command.h"

namespace blixard::cli {
namespace {

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("blixard <command> [flags]");
  const std::vector<Command> commands = {
      BenchCommand(), CheckCommand(), ClusterCommand(), DevCommand(),     KvCommand(),
      MemberCommand(), NodeCommand(), SimCommand(),     TaskCommand(),    VersionCommand(),
      VmCommand(),    WorkerCommand()};
  return RunCommandLine(commands, std::vector<std::string>(argv + 1, argv + argc), std::cout,
                        std::cerr);
}

}  // namespace
}  // namespace blixard::cli

int main(int argc, char** argv) { return blixard::cli::Main(argc, argv); }
