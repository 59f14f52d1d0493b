// Subcommands of the `blixard` binary. Each subcommand lives in its own
// file, defines its own absl flags there, and registers a Command in
// main.cc's table. This folder is the only place in the tree with flags.
#ifndef BLIXARD_CLI_COMMAND_H_
#define BLIXARD_CLI_COMMAND_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace blixard::cli {

// Exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the job ran and found a problem
inline constexpr int kExitUsage = 2;    // bad subcommand, flag or value

struct Command {
  absl::string_view name;
  absl::string_view summary;  // one line for `blixard --help`
  absl::string_view usage;    // argument synopsis after the name
  // The absl flags this subcommand accepts; any other flag is a usage error.
  std::vector<absl::string_view> flags;
  // Runs with the flags already parsed; `args` holds positional arguments.
  int (*run)(const std::vector<std::string>& args);
};

int RunVersion(const std::vector<std::string>& args);
int RunSim(const std::vector<std::string>& args);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_COMMAND_H_
