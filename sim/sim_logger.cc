#include "sim/sim_logger.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/check.h"

namespace blixard::sim {

std::string FormatVirtualTime(SimMicros t_us) {
  CHECK_GE(t_us, 0);
  return absl::StrFormat("%d.%06d", t_us / kMicrosPerSecond,
                         t_us % kMicrosPerSecond);
}

SimLogger::SimLogger(const World* world, NodeId node, Logger* sink)
    : world_(world),
      node_label_(node.is_none() ? "world" : absl::StrCat("n", node.value())),
      sink_(sink) {
  CHECK(world != nullptr);
  CHECK(sink != nullptr) << "use NullLogger to discard";
}

void SimLogger::Log(LogLevel level, absl::string_view message) {
  sink_->Log(level, absl::StrCat("t=", FormatVirtualTime(world_->now_us()), " ",
                                 node_label_, " ", message));
}

}  // namespace blixard::sim
