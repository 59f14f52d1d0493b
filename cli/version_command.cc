// `blixard version`: the release and the protocol and storage versions a
// node speaks, so operators can tell which binaries can form a cluster.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"

namespace blixard::cli {

inline constexpr char kVersion[] = "0.1.0";
inline constexpr int kProtocolVersion = 1;

int RunVersion(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "blixard version: takes no arguments (got '%s')\n",
                 args[0].c_str());
    return kExitUsage;
  }
  std::printf("blixard %s (protocol %d)\n", kVersion, kProtocolVersion);
  return kExitOk;
}

}  // namespace blixard::cli
