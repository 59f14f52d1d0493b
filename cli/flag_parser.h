// Parses one subcommand's flags, accepting only the flags that subcommand
// declares. absl::ParseCommandLine would accept every flag linked into the
// binary and exit(1) on errors; the CLI needs per-command flag sets and exit
// code 2 with a one-line message.
//
// A command's flag set is a list of CommandFlag bindings: the name the user
// types after the command, and the absl flag that holds the value (its type,
// value syntax, default and help). The absl flag's own name does not matter to
// the user, so two commands may each offer `--output`, bound to two absl flags
// of different types (cli/command.h explains the naming convention).
//
// Accepted forms: --name=value, --name value, --bool_flag, --nobool_flag,
// and `--` to end flags. Dashes in a flag's name are read as underscores.
// Arguments not starting with `-` are positional.
//
// Thread: not thread-safe (sets process-global absl flags); call from main.
#ifndef BLIXARD_CLI_FLAG_PARSER_H_
#define BLIXARD_CLI_FLAG_PARSER_H_

#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blixard::cli {

// One flag of a command: `--name` on the command line sets `flag`.
struct CommandFlag {
  absl::string_view name;  // underscores, no leading dashes, e.g. "check_determinism"
  const absl::CommandLineFlag* flag;
};

// Binds `--name` to an absl flag: BindFlag("seed", FLAGS_sim_seed). Naming the
// FLAGS_ object (not its name as a string) makes a typo a compile error.
template <typename T>
CommandFlag BindFlag(absl::string_view name, const absl::Flag<T>& flag) {
  return {name, &absl::GetFlagReflectionHandle(flag)};
}

struct ParsedArgs {
  std::vector<std::string> positional;
  bool help = false;  // --help or -h was given
};

// Sets the bound absl flags from `args` (the arguments after the subcommand).
// Errors (INVALID_ARGUMENT, message naming the flag as the user typed it and
// the problem): a flag not in `flags`, a missing value, a value the flag's type
// rejects. On error no flag has been changed.
// REQUIRES: the names in `flags` are distinct.
absl::StatusOr<ParsedArgs> ParseFlags(const std::vector<std::string>& args,
                                      const std::vector<CommandFlag>& flags);

// As above, with each name in `allowed` bound to the absl flag of that name.
// REQUIRES: every name in `allowed` is a defined absl flag.
absl::StatusOr<ParsedArgs> ParseFlags(const std::vector<std::string>& args,
                                      const std::vector<absl::string_view>& allowed);

// "  --name=<default>\n      help" lines for the given flags, for usage text,
// under the names the user types.
std::string DescribeFlags(const std::vector<CommandFlag>& flags);

// As above, for the absl flags of the given names.
// REQUIRES: every name is a defined absl flag.
std::string DescribeFlags(const std::vector<absl::string_view>& flags);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_FLAG_PARSER_H_
