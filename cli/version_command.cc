#include "cli/version_command.h"

#include <cstdio>
#include <string>
#include <vector>

namespace blixard::cli {
namespace {

inline constexpr char kVersion[] = "0.1.0";
inline constexpr int kProtocolVersion = 1;

int RunVersion(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "blixard version: takes no arguments (got '%s')\n", args[0].c_str());
    return kExitUsage;
  }
  std::printf("blixard %s (protocol %d)\n", kVersion, kProtocolVersion);
  return kExitOk;
}

}  // namespace

const Command& VersionCommand() {
  static const Command* const command =
      new Command{"version", "print the release and protocol version", "", {}, &RunVersion};
  return *command;
}

}  // namespace blixard::cli
