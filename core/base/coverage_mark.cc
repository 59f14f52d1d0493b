#include "core/base/coverage_mark.h"

namespace blixard {

namespace coverage_mark_internal {
CoverageMarkCounts g_counts = {};
}  // namespace coverage_mark_internal

absl::string_view CoverageMarkName(CoverageMark mark) {
  switch (mark) {
#define BLIXARD_COVERAGE_MARK_NAME(name, doc) \
  case CoverageMark::name:                    \
    return #name;
    BLIXARD_COVERAGE_MARKS(BLIXARD_COVERAGE_MARK_NAME)
#undef BLIXARD_COVERAGE_MARK_NAME
  }
  return "?";
}

absl::string_view CoverageMarkDescription(CoverageMark mark) {
  switch (mark) {
#define BLIXARD_COVERAGE_MARK_DOC(name, doc) \
  case CoverageMark::name:                   \
    return doc;
    BLIXARD_COVERAGE_MARKS(BLIXARD_COVERAGE_MARK_DOC)
#undef BLIXARD_COVERAGE_MARK_DOC
  }
  return "?";
}

void ResetCoverageMarks() { coverage_mark_internal::g_counts.fill(0); }

CoverageMarkCounts ReadCoverageMarks() { return coverage_mark_internal::g_counts; }

}  // namespace blixard
