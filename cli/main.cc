// The `blixard` binary: `blixard <command> [flags]`.
//
// Exit codes: 0 success, 1 the command ran and failed (e.g. a simulation
// found a violation), 2 bad usage (unknown command or flag, bad value).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flag_parser.h"

namespace blixard::cli {
namespace {

const std::vector<Command>& Commands() {
  static const auto* const commands = new std::vector<Command>{
      {"sim", "run a seeded simulation of a faulty cluster and check it", "",
       {"seed", "nodes", "duration", "liveness", "faults", "workload", "trace", "timeline",
        "verbose", "seeds", "jobs", "check_determinism", "shrink", "shrink_out",
        "shrink_runs", "record_script", "swarm_params", "membership_changes",
        "snapshot_interval", "log_retain"},
       &RunSim},
      {"version", "print the release and protocol version", "", {}, &RunVersion},
  };
  return *commands;
}

void PrintUsage(std::FILE* out) {
  std::string text =
      "usage: blixard <command> [flags]\n\n"
      "Blixard: a simulation-tested Raft engine replicating a cluster "
      "scheduler.\n\ncommands:\n";
  for (const Command& command : Commands()) {
    absl::StrAppend(&text, "  ", command.name,
                    std::string(command.name.size() < 12
                                    ? 12 - command.name.size()
                                    : 1,
                                ' '),
                    command.summary, "\n");
  }
  absl::StrAppend(&text, "  help        show this text\n\n",
                  "`blixard <command> --help` describes a command's flags.\n");
  std::fputs(text.c_str(), out);
}

void PrintCommandUsage(const Command& command) {
  std::string text = absl::StrCat("usage: blixard ", command.name,
                                  command.flags.empty() ? "" : " [flags]",
                                  command.usage.empty() ? "" : " ",
                                  command.usage, "\n\n", command.summary, "\n");
  if (!command.flags.empty()) {
    absl::StrAppend(&text, "\nflags:\n", DescribeFlags(command.flags));
  }
  std::fputs(text.c_str(), stdout);
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("blixard <command> [flags]");
  if (argc < 2) {
    PrintUsage(stderr);
    return kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "help" || name == "--help" || name == "-h" || name == "-help") {
    PrintUsage(stdout);
    return kExitOk;
  }
  for (const Command& command : Commands()) {
    if (command.name != name) continue;
    const std::vector<std::string> args(argv + 2, argv + argc);
    absl::StatusOr<ParsedArgs> parsed = ParseFlags(args, command.flags);
    if (!parsed.ok()) {
      std::fprintf(stderr, "blixard %s: %s (see 'blixard %s --help')\n",
                   name.c_str(), std::string(parsed.status().message()).c_str(),
                   name.c_str());
      return kExitUsage;
    }
    if (parsed->help) {
      PrintCommandUsage(command);
      return kExitOk;
    }
    return command.run(parsed->positional);
  }
  std::fprintf(stderr,
               "blixard: unknown command '%s' (see 'blixard --help')\n",
               name.c_str());
  return kExitUsage;
}

}  // namespace
}  // namespace blixard::cli

int main(int argc, char** argv) { return blixard::cli::Main(argc, argv); }
