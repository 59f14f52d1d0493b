#include "core/base/planted_bug.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace blixard {
namespace {

// BLIXARD_PLANTED_BUG is set by core/base/BUILD.bazel from
// --define=planted_bug=NAME (one config_setting per known name, so the
// value is always an enumerator; bazel/planted_bug.bzl fails the build for
// an unknown name).
#ifdef BLIXARD_PLANTED_BUG
constexpr PlantedBug kBuildDefault = PlantedBug::BLIXARD_PLANTED_BUG;
#else
constexpr PlantedBug kBuildDefault = PlantedBug::kNone;
#endif

}  // namespace

namespace planted_bug_internal {
// Constant-initialized: no static-initialization order to worry about.
PlantedBug g_active = kBuildDefault;
}  // namespace planted_bug_internal

PlantedBug BuildPlantedBug() { return kBuildDefault; }

absl::string_view PlantedBugName(PlantedBug bug) {
  switch (bug) {
    case PlantedBug::kNone:
      return "none";
    case PlantedBug::kVoteWithoutLogCheck:
      return "vote_without_log_check";
    case PlantedBug::kCommitPreviousTerm:
      return "commit_previous_term";
    case PlantedBug::kAckBeforeDurable:
      return "ack_before_durable";
    case PlantedBug::kReadWithoutReadIndex:
      return "read_without_read_index";
    case PlantedBug::kForgetVoteOnRestart:
      return "forget_vote_on_restart";
  }
  return "?";
}

std::vector<PlantedBug> AllPlantedBugs() {
  std::vector<PlantedBug> bugs;
  for (int i = 1; i < kPlantedBugCount; ++i) bugs.push_back(static_cast<PlantedBug>(i));
  return bugs;
}

absl::StatusOr<PlantedBug> ParsePlantedBug(absl::string_view name) {
  std::vector<std::string> known;
  for (int i = 0; i < kPlantedBugCount; ++i) {
    const PlantedBug bug = static_cast<PlantedBug>(i);
    if (PlantedBugName(bug) == name) return bug;
    known.emplace_back(PlantedBugName(bug));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown planted bug '", name, "' (known: ",
                                                 absl::StrJoin(known, ", "), ")"));
}

}  // namespace blixard
