// Planted bugs: known-wrong behaviours that can be switched on in the core
// and the Host, to test the tester (issue 7). Each one is a classic Raft
// mistake; with one planted, the simulator's oracles must catch it on some
// seed (sim/planted_bug_search.h and //sim:planted_bug_<name>_test prove
// that they do).
//
// Which bug is planted is one process-global value. Its default comes from
// the build:
//
//   bazel build -c opt --define=planted_bug=commit_previous_term //cli:blixard
//
// (an unknown name fails the build, naming the known ones). Without the
// define nothing is planted, and every check is one load and a compare that
// the branch predictor learns (ABSL_PREDICT_FALSE keeps the planted path out
// of the hot code). Tests plant bugs at run time with
// ScopedPlantedBugForTesting (core/base/planted_bug_testing.h), so one test
// binary can try each in turn.
//
// Use at a planted site:
//
//   if (Planted(PlantedBug::kVoteWithoutLogCheck) || log_.IsUpToDate(...)) {
//
// The global is not a decision input in normal builds (it is constant for
// the whole process), so determinism holds: same build + same planted bug +
// same seed => same run. Not thread-safe to change; read from any thread.
#ifndef BLIXARD_CORE_BASE_PLANTED_BUG_H_
#define BLIXARD_CORE_BASE_PLANTED_BUG_H_

#include <cstdint>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blixard {

enum class PlantedBug : uint8_t {
  kNone = 0,
  // A voter grants its vote without the up-to-date log check (Raft §5.4.1).
  kVoteWithoutLogCheck,
  // A leader commits an entry of a previous term by counting replicas
  // (Raft §5.4.2, Figure 8).
  kCommitPreviousTerm,
  // The leader acknowledges a client's write as soon as the entry is in its
  // own log, before it is committed (durable on a quorum).
  kAckBeforeDurable,
  // The leader answers a read from its local state without ReadIndex
  // (Raft thesis §6.4): a deposed or new leader serves stale data.
  kReadWithoutReadIndex,
  // A node loses its vote (the hard state's vote) when it restarts, so it
  // can vote twice in one term (Raft Figure 2: votedFor is persistent).
  kForgetVoteOnRestart,
};
inline constexpr int kPlantedBugCount = 6;

// Stable names: "none", "vote_without_log_check", "commit_previous_term",
// "ack_before_durable", "read_without_read_index", "forget_vote_on_restart".
absl::string_view PlantedBugName(PlantedBug bug);
// INVALID_ARGUMENT naming the known bugs for anything else.
absl::StatusOr<PlantedBug> ParsePlantedBug(absl::string_view name);
// Every real bug (kNone excluded), in enum order.
std::vector<PlantedBug> AllPlantedBugs();

namespace planted_bug_internal {
// The bug planted in this process. Written only at start-up (its
// constant-initialized build default) and by ScopedPlantedBugForTesting.
extern PlantedBug g_active;
}  // namespace planted_bug_internal

// The bug planted in this process (kNone in a normal build).
inline PlantedBug ActivePlantedBug() { return planted_bug_internal::g_active; }

// True when `bug` is the planted one. REQUIRES: bug != kNone.
inline bool Planted(PlantedBug bug) {
  return ABSL_PREDICT_FALSE(planted_bug_internal::g_active == bug);
}

// The bug the build planted (--define=planted_bug=NAME), kNone without it.
PlantedBug BuildPlantedBug();

}  // namespace blixard

#endif  // BLIXARD_CORE_BASE_PLANTED_BUG_H_
