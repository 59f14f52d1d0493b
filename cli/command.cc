#include "cli/command.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/check.h"

namespace blixard::cli {
namespace {

// Width of the command-name column in `blixard --help`.
inline constexpr size_t kCommandColumnWidth = 12;

void CheckTable(const std::vector<Command>& commands) {
  for (size_t i = 0; i < commands.size(); ++i) {
    const Command& command = commands[i];
    CHECK(!command.name.empty()) << "command " << i << " has no name";
    CHECK(command.run != nullptr) << "command " << command.name << " has no run function";
    for (size_t j = 0; j < i; ++j) {
      CHECK(commands[j].name != command.name) << "command " << command.name << " listed twice";
    }
    for (size_t f = 0; f < command.flags.size(); ++f) {
      const absl::string_view flag = command.flags[f].name;
      CHECK(!flag.empty() && flag.find('-') == absl::string_view::npos)
          << "command " << command.name << " has a bad flag name '" << flag << "'";
      CHECK(command.flags[f].flag != nullptr) << "--" << flag << " is bound to no flag";
      for (size_t g = 0; g < f; ++g) {
        CHECK(command.flags[g].name != flag)
            << "command " << command.name << " binds --" << flag << " twice";
      }
    }
  }
}

void PrintUsage(const std::vector<Command>& commands, std::ostream& out) {
  std::string text =
      "usage: blixard <command> [flags]\n\n"
      "Blixard: a simulation-tested Raft engine replicating a cluster "
      "scheduler.\n\ncommands:\n";
  for (const Command& command : commands) {
    const size_t pad =
        command.name.size() < kCommandColumnWidth ? kCommandColumnWidth - command.name.size() : 1;
    absl::StrAppend(&text, "  ", command.name, std::string(pad, ' '), command.summary, "\n");
  }
  absl::StrAppend(&text, "  help        show this text\n\n",
                  "`blixard <command> --help` describes a command's flags.\n");
  out << text;
}

void PrintCommandUsage(const Command& command, std::ostream& out) {
  std::string text =
      absl::StrCat("usage: blixard ", command.name, command.flags.empty() ? "" : " [flags]",
                   command.usage.empty() ? "" : " ", command.usage, "\n\n", command.summary, "\n");
  if (!command.flags.empty()) {
    absl::StrAppend(&text, "\nflags:\n", DescribeFlags(command.flags));
  }
  out << text;
}

}  // namespace

int RunCommandLine(const std::vector<Command>& commands, const std::vector<std::string>& args,
                   std::ostream& out, std::ostream& err) {
  CheckTable(commands);
  if (args.empty()) {
    PrintUsage(commands, err);
    return kExitUsage;
  }
  const std::string& name = args[0];
  if (name == "help" || name == "--help" || name == "-h" || name == "-help") {
    PrintUsage(commands, out);
    return kExitOk;
  }
  for (const Command& command : commands) {
    if (command.name != name) continue;
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    absl::StatusOr<ParsedArgs> parsed = ParseFlags(rest, command.flags);
    if (!parsed.ok()) {
      err << "blixard " << name << ": " << parsed.status().message() << " (see 'blixard " << name
          << " --help')\n";
      return kExitUsage;
    }
    if (parsed->help) {
      PrintCommandUsage(command, out);
      return kExitOk;
    }
    return command.run(parsed->positional);
  }
  err << "blixard: unknown command '" << name << "' (see 'blixard --help')\n";
  return kExitUsage;
}

}  // namespace blixard::cli
