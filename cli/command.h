// Subcommands of the `blixard` binary, and the dispatcher that runs one.
//
// Each command is its own library (//cli:sim_command, //cli:version_command,
// ...) exposing one Command: its name, a one-line summary, its usage, its
// flags and the function that runs it. main.cc lists them in a table and
// hands the command line to RunCommandLine.
//
// Flags: absl flags share one registry per binary, so two commands that both
// wrote ABSL_FLAG(..., output, ...) would not even link, and a command parsed
// with absl::ParseCommandLine would accept every other command's flags. So:
//   - each command defines its absl flags in its own .cc file, named with the
//     command's name as a prefix: ABSL_FLAG(uint64_t, sim_seed, ...);
//   - its Command binds the name the user types to that flag:
//     BindFlag("seed", FLAGS_sim_seed) (cli/flag_parser.h);
//   - the dispatcher parses a command's arguments against that command's
//     bindings only, so `--seed` exists for `sim` and nowhere else, and two
//     commands may both offer `--output` (say, an int and a path), each
//     bound to its own absl flag.
// absl still supplies each flag's type, value syntax, default and help text.
// The absl names are never seen by the user. The prefix is a convention, but
// a clash cannot pass silently: two ABSL_FLAGs of the same name define the same
// FLAGS_ symbol and the binary fails to link. Commands that mean the same
// thing by a flag (client commands' `--endpoints`) may bind one shared absl
// flag.
//
// Thread: everything here runs on main's thread (absl flags are process
// globals).
#ifndef BLIXARD_CLI_COMMAND_H_
#define BLIXARD_CLI_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "cli/flag_parser.h"

namespace blixard::cli {

// Exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the job ran and found a problem
inline constexpr int kExitUsage = 2;    // bad subcommand, flag or value

struct Command {
  absl::string_view name;
  absl::string_view summary;  // one line for `blixard --help`
  absl::string_view usage;    // argument synopsis after the name
  // The flags this subcommand accepts; any other flag is a usage error.
  std::vector<CommandFlag> flags;
  // Runs with the flags already parsed; `args` holds positional arguments.
  // Returns the process exit code (kExit*).
  int (*run)(const std::vector<std::string>& args);
};

// Runs the command line `args` (argv without the program name) against the
// command table: `<command> [flags] [args]`, `help`, `--help`,
// `<command> --help`. Usage text goes to `out` when asked for and to `err`
// with a usage error. Returns the exit code: the command's own, or kExitUsage
// for no command, an unknown command, an unknown flag or a bad flag value
// (one line on `err` naming it; no flag changed).
// REQUIRES: command names are distinct and non-empty; within a command, flag
// names are distinct, non-empty and contain no '-' (dashes typed by the user
// are read as underscores); every command has a run function.
int RunCommandLine(const std::vector<Command>& commands, const std::vector<std::string>& args,
                   std::ostream& out, std::ostream& err);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_COMMAND_H_
