// SimLogger: a node's Logger in the simulator. It stamps every line with the
// virtual time and the node id and passes it on to a shared sink (stderr
// under --verbose, a CapturingLogger in tests, NullLogger otherwise):
//
//   "t=1.234567 n3 became leader at term 2"
//
// Virtual time in seconds with six decimals, formatted with integers only.
// Thread: the simulation's single thread. The World and the sink must
// outlive it.
#ifndef BLIXARD_SIM_SIM_LOGGER_H_
#define BLIXARD_SIM_SIM_LOGGER_H_

#include <string>

#include "absl/strings/string_view.h"
#include "core/base/logger.h"
#include "core/base/types.h"
#include "core/env.h"
#include "sim/world.h"

namespace blixard::sim {

// "1.234567" for 1'234'567 us.
std::string FormatVirtualTime(SimMicros t_us);

class SimLogger final : public Logger {
 public:
  // `node` may be kNoNode (lines then say "world").
  SimLogger(const World* world, NodeId node, Logger* sink);

  bool Enabled(LogLevel level) const override { return sink_->Enabled(level); }
  void Log(LogLevel level, absl::string_view message) override;

 private:
  const World* world_;
  std::string node_label_;
  Logger* sink_;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIM_LOGGER_H_
