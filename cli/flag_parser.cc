#include "cli/flag_parser.h"

#include <algorithm>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/base/check.h"

namespace blixard::cli {
namespace {

struct Assignment {
  absl::string_view name;  // as bound for the command, for error messages
  absl::CommandLineFlag* flag;
  std::string value;
};

// The binding of `name`, or nullptr when the command has no such flag.
const CommandFlag* Find(const std::vector<CommandFlag>& flags, absl::string_view name) {
  const auto it = std::find_if(flags.begin(), flags.end(),
                               [name](const CommandFlag& f) { return f.name == name; });
  return it == flags.end() ? nullptr : &*it;
}

// The registry's mutable handle of a bound flag (bindings hold the const one
// GetFlagReflectionHandle gives; setting a value needs the other).
absl::CommandLineFlag* Mutable(const CommandFlag& binding) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(binding.flag->Name());
  CHECK(flag == binding.flag) << "--" << binding.name << " is bound to absl flag "
                              << binding.flag->Name() << ", which is not registered";
  return flag;
}

std::vector<CommandFlag> BindByName(const std::vector<absl::string_view>& names) {
  std::vector<CommandFlag> flags;
  flags.reserve(names.size());
  for (absl::string_view name : names) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    CHECK(flag != nullptr) << "no absl flag named --" << name;
    flags.push_back({name, flag});
  }
  return flags;
}

}  // namespace

absl::StatusOr<ParsedArgs> ParseFlags(const std::vector<std::string>& args,
                                      const std::vector<CommandFlag>& flags) {
  for (size_t i = 0; i < flags.size(); ++i) {
    CHECK(Find(flags, flags[i].name) == &flags[i]) << "flag --" << flags[i].name << " bound twice";
  }
  ParsedArgs parsed;
  std::vector<Assignment> assignments;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      parsed.help = true;
      continue;
    }
    absl::string_view body(arg);
    body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
    std::string name_storage(body);
    std::string value;
    bool has_value = false;
    if (const size_t eq = body.find('='); eq != absl::string_view::npos) {
      name_storage = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
      has_value = true;
    }
    // --check-determinism and --check_determinism name the same flag.
    std::replace(name_storage.begin(), name_storage.end(), '-', '_');
    const absl::string_view name = name_storage;
    const CommandFlag* binding = Find(flags, name);
    // --noname for booleans.
    if (binding == nullptr && !has_value && absl::StartsWith(name, "no")) {
      const CommandFlag* negated = Find(flags, name.substr(2));
      if (negated != nullptr && negated->flag->IsOfType<bool>()) {
        assignments.push_back({negated->name, Mutable(*negated), "false"});
        continue;
      }
    }
    if (binding == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown flag --", name, flags.empty() ? " (this command takes no flags)" : ""));
    }
    if (!has_value) {
      if (binding->flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    assignments.push_back({binding->name, Mutable(*binding), std::move(value)});
  }
  // Validate every value before changing any flag, so a bad command line
  // changes nothing.
  for (const Assignment& a : assignments) {
    std::string error;
    const std::string saved = a.flag->CurrentValue();
    if (!a.flag->ParseFrom(a.value, &error)) {
      // absl's message quotes the registry's name ('sim_seed'); the user
      // typed --seed.
      absl::StrReplaceAll(
          {{absl::StrCat("'", a.flag->Name(), "'"), absl::StrCat("'", a.name, "'")}}, &error);
      return absl::InvalidArgumentError(
          absl::StrCat("bad value '", a.value, "' for flag --", a.name, ": ", error));
    }
    std::string restore_error;
    CHECK(a.flag->ParseFrom(saved, &restore_error)) << restore_error;
  }
  for (const Assignment& a : assignments) {
    std::string error;
    CHECK(a.flag->ParseFrom(a.value, &error)) << error;
  }
  return parsed;
}

absl::StatusOr<ParsedArgs> ParseFlags(const std::vector<std::string>& args,
                                      const std::vector<absl::string_view>& allowed) {
  return ParseFlags(args, BindByName(allowed));
}

std::string DescribeFlags(const std::vector<CommandFlag>& flags) {
  std::string out;
  for (const CommandFlag& binding : flags) {
    absl::StrAppend(&out, "  --", binding.name, "=", binding.flag->DefaultValue(), "\n      ",
                    binding.flag->Help(), "\n");
  }
  return out;
}

std::string DescribeFlags(const std::vector<absl::string_view>& flags) {
  return DescribeFlags(BindByName(flags));
}

}  // namespace blixard::cli
