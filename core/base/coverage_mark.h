// Coverage marks: named counters on rare paths (TigerBeetle's and
// rust-analyzer's cov_mark), so a test or a sweep can prove that the
// simulator actually drives the code into the corners that matter, rather
// than trusting that it does.
//
//   COVERAGE_MARK(check_quorum_step_down);   // at the rare path
//
//   ResetCoverageMarks();                    // a simulation run starts
//   ... run ...
//   CoverageMarkCounts counts = ReadCoverageMarks();
//   counts[CoverageMark::check_quorum_step_down] > 0
//
// Every mark is declared once, in BLIXARD_COVERAGE_MARKS below, so a sweep
// can also name the marks it MISSED (a function-local registry would only
// know the marks that were hit); a typo in COVERAGE_MARK is a compile error.
//
// Contract: a mark only counts. It never influences a decision, does no
// I/O and costs one increment, so it is allowed in core/ and always on.
// The counters are one process-global array (not atomic): the core is
// single-threaded per process in the simulator, and a production process
// that never reads the marks does not care about a lost increment.
// Deterministic: the counts of a run depend only on the run.
#ifndef BLIXARD_CORE_BASE_COVERAGE_MARK_H_
#define BLIXARD_CORE_BASE_COVERAGE_MARK_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace blixard {

// X(name, what it means). Add a mark here, then COVERAGE_MARK(name) at the
// path; //sim:coverage_marks_test fails until a sweep hits it.
#define BLIXARD_COVERAGE_MARKS(X)                                                \
  X(check_quorum_step_down,                                                      \
    "a leader stepped down because check-quorum found no active quorum")         \
  X(snapshot_installed_while_partitioned,                                        \
    "a node installed a leader's snapshot while a network partition was active") \
  X(conf_change_during_election,                                                 \
    "a node campaigned or became leader with an unapplied conf change in its log") \
  X(uncommitted_suffix_truncated,                                                \
    "a follower truncated a conflicting uncommitted suffix of its log")          \
  X(torn_write_on_restart,                                                       \
    "a restarted node's store found a torn last write (checksum failed)")

enum class CoverageMark : uint8_t {
#define BLIXARD_COVERAGE_MARK_ENUMERATOR(name, doc) name,
  BLIXARD_COVERAGE_MARKS(BLIXARD_COVERAGE_MARK_ENUMERATOR)
#undef BLIXARD_COVERAGE_MARK_ENUMERATOR
};

inline constexpr size_t kCoverageMarkCount = 0
#define BLIXARD_COVERAGE_MARK_COUNT(name, doc) +1
    BLIXARD_COVERAGE_MARKS(BLIXARD_COVERAGE_MARK_COUNT)
#undef BLIXARD_COVERAGE_MARK_COUNT
    ;

// Hits per mark, indexed by the mark's enum value.
using CoverageMarkCounts = std::array<uint64_t, kCoverageMarkCount>;

namespace coverage_mark_internal {
extern CoverageMarkCounts g_counts;
}  // namespace coverage_mark_internal

inline void HitCoverageMark(CoverageMark mark) {
  ++coverage_mark_internal::g_counts[static_cast<size_t>(mark)];
}

// The mark's name as written in COVERAGE_MARK, and its one-line meaning.
absl::string_view CoverageMarkName(CoverageMark mark);
absl::string_view CoverageMarkDescription(CoverageMark mark);
// The mark at `i` < kCoverageMarkCount (for iterating every mark).
inline CoverageMark CoverageMarkAt(size_t i) { return static_cast<CoverageMark>(i); }

// Sets every counter to zero (a simulation run does this at its start).
void ResetCoverageMarks();
// The counters now.
CoverageMarkCounts ReadCoverageMarks();

}  // namespace blixard

#define COVERAGE_MARK(name) ::blixard::HitCoverageMark(::blixard::CoverageMark::name)

#endif  // BLIXARD_CORE_BASE_COVERAGE_MARK_H_
