// Linked only into //cli:blixard_planted, a test build: plants the bug
// named by $BLIXARD_PLANTED_BUG (core/base/planted_bug.h names them) before
// main runs, so the fault harness can show it catches a real node's
// mistakes (net/testing/fault_harness_test). The production binary
// //cli:blixard never links this: no environment variable can plant a
// bug there.
#include <cstdlib>
#include <memory>

#include "absl/status/statusor.h"
#include "core/base/check.h"
#include "core/base/planted_bug.h"
#include "core/base/planted_bug_testing.h"

namespace blixard::cli {
namespace {

// A static object: its constructor runs before main.
class PlantFromEnvironment {
 public:
  PlantFromEnvironment() {
    const char* name = std::getenv("BLIXARD_PLANTED_BUG");
    if (name == nullptr || *name == '\0') return;
    absl::StatusOr<PlantedBug> bug = ParsePlantedBug(name);
    CHECK_OK(bug.status()) << "BLIXARD_PLANTED_BUG";
    planted_ = std::make_unique<ScopedPlantedBugForTesting>(*bug);
  }

 private:
  std::unique_ptr<ScopedPlantedBugForTesting> planted_;
};

const PlantFromEnvironment kPlanted;

}  // namespace
}  // namespace blixard::cli
