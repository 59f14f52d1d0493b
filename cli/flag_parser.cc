#include "cli/flag_parser.h"

#include <algorithm>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::cli {
namespace {

struct Assignment {
  absl::CommandLineFlag* flag;
  std::string value;
};

bool IsAllowed(const std::vector<absl::string_view>& allowed,
               absl::string_view name) {
  return std::find(allowed.begin(), allowed.end(), name) != allowed.end();
}

}  // namespace

absl::StatusOr<ParsedArgs> ParseFlags(
    const std::vector<std::string>& args,
    const std::vector<absl::string_view>& allowed) {
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
    absl::CommandLineFlag* flag =
        IsAllowed(allowed, name) ? absl::FindCommandLineFlag(name) : nullptr;
    // --noname for booleans.
    if (flag == nullptr && !has_value && absl::StartsWith(name, "no")) {
      const absl::string_view positive = name.substr(2);
      absl::CommandLineFlag* negated = IsAllowed(allowed, positive)
                                           ? absl::FindCommandLineFlag(positive)
                                           : nullptr;
      if (negated != nullptr && negated->IsOfType<bool>()) {
        assignments.push_back({negated, "false"});
        continue;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name,
                       allowed.empty() ? " (this command takes no flags)" : ""));
    }
    if (!has_value) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
    }
    assignments.push_back({flag, std::move(value)});
  }
  // Validate every value before changing any flag, so a bad command line
  // changes nothing.
  for (const Assignment& a : assignments) {
    std::string error;
    const std::string saved = a.flag->CurrentValue();
    if (!a.flag->ParseFrom(a.value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad value '", a.value, "' for flag --", a.flag->Name(), ": ", error));
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

std::string DescribeFlags(const std::vector<absl::string_view>& flags) {
  std::string out;
  for (absl::string_view name : flags) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    CHECK(flag != nullptr) << "subcommand lists an undefined flag --" << name;
    absl::StrAppend(&out, "  --", name, "=", flag->DefaultValue(), "\n      ",
                    flag->Help(), "\n");
  }
  return out;
}

}  // namespace blixard::cli
