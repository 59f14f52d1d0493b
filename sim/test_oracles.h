// Oracles for tests: planted "bugs" that a real simulation trips
// deterministically, to test replay and shrinking end to end. testonly.
#ifndef BLIXARD_SIM_TEST_ORACLES_H_
#define BLIXARD_SIM_TEST_ORACLES_H_

#include <optional>

#include "sim/simulation.h"

namespace blixard::sim {

// Fails ("test_oracle") once two crashes happened and a put of key k1 was
// invoked: the cause is two crash faults and one operation, whatever else
// the seed did. Replaying the recording fails the same way, at the same
// time; shrinking keeps exactly those.
inline std::optional<OracleFailure> TwoCrashesAndAPut(const SimulationProbe& probe) {
  auto crashes = probe.faults_applied->find("crash");
  if (crashes == probe.faults_applied->end() || crashes->second < 2) return std::nullopt;
  for (const ClientOp& op : *probe.ops_invoked) {
    if (op.Name() == "put" && op.request.command().kv_put().key() == "k1") {
      return OracleFailure{"test_oracle", "a put of k1 and two crashes"};
    }
  }
  return std::nullopt;
}

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_TEST_ORACLES_H_
