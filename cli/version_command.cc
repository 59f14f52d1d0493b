#include "cli/version_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "net/transport/tcp_transport.h"

namespace blixard::cli {
namespace {

inline constexpr char kVersion[] = "0.1.0";

int RunVersion(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "blixard version: takes no arguments (got '%s')\n", args[0].c_str());
    return kExitUsage;
  }
  // The peer protocol this binary speaks (a node accepts peers from
  // kProtocolVersionMin up to it).
  std::printf("blixard %s (protocol %u)\n", kVersion, net::kProtocolVersion);
  return kExitOk;
}

}  // namespace

const Command& VersionCommand() {
  static const Command* const command =
      new Command{"version", "print the release and protocol version", "", {}, &RunVersion};
  return *command;
}

}  // namespace blixard::cli
