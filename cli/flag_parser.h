// Parses one subcommand's flags with absl's flag registry, accepting only the
// flags that subcommand declares. absl::ParseCommandLine would accept every
// flag linked into the binary and exit(1) on errors; the CLI needs per-command
// flag sets and exit code 2 with a one-line message.
//
// Accepted forms: --name=value, --name value, --bool_flag, --nobool_flag,
// and `--` to end flags. Dashes in a flag's name are read as underscores. Arguments not starting with `-` are positional.
#ifndef BLIXARD_CLI_FLAG_PARSER_H_
#define BLIXARD_CLI_FLAG_PARSER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blixard::cli {

struct ParsedArgs {
  std::vector<std::string> positional;
  bool help = false;  // --help or -h was given
};

// Sets the named absl flags from `args` (the arguments after the subcommand).
// Errors (INVALID_ARGUMENT, message naming the flag and the problem): a flag
// not in `allowed`, a missing value, a value the flag's type rejects. On error
// no flag has been changed.
absl::StatusOr<ParsedArgs> ParseFlags(const std::vector<std::string>& args,
                                      const std::vector<absl::string_view>& allowed);

// "  --name=<default>  help" lines for the given flags, for usage text.
std::string DescribeFlags(const std::vector<absl::string_view>& flags);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_FLAG_PARSER_H_
