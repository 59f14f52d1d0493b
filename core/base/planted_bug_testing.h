// ScopedPlantedBugForTesting: plants a bug (core/base/planted_bug.h) for the
// lifetime of the object and restores the previous one after, so one test
// binary can plant each bug in turn:
//
//   {
//     ScopedPlantedBugForTesting planted(PlantedBug::kCommitPreviousTerm);
//     SimulationReport report = RunSimulation(options);
//     EXPECT_FALSE(report.passed);
//   }
//
// Test-only (the Bazel target is testonly). Not thread-safe: plant before
// starting anything that reads the flag, on the thread that runs it.
#ifndef BLIXARD_CORE_BASE_PLANTED_BUG_TESTING_H_
#define BLIXARD_CORE_BASE_PLANTED_BUG_TESTING_H_

#include "core/base/planted_bug.h"

namespace blixard {

class ScopedPlantedBugForTesting {
 public:
  explicit ScopedPlantedBugForTesting(PlantedBug bug)
      : previous_(planted_bug_internal::g_active) {
    planted_bug_internal::g_active = bug;
  }
  ~ScopedPlantedBugForTesting() { planted_bug_internal::g_active = previous_; }
  ScopedPlantedBugForTesting(const ScopedPlantedBugForTesting&) = delete;
  ScopedPlantedBugForTesting& operator=(const ScopedPlantedBugForTesting&) = delete;

 private:
  PlantedBug previous_;
};

}  // namespace blixard

#endif  // BLIXARD_CORE_BASE_PLANTED_BUG_TESTING_H_
