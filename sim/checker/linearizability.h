// Linearizability checking of a KV history (Herlihy & Wing 1990).
//
// The search is Wing & Gong's, with Lowe's cache of (linearized set, state)
// pairs already explored, run per key: a KV store is linearizable iff each
// key's sub-history is (P-compositionality, Horn & Kroening 2015), which
// turns one exponential search into many small ones.
//
// Operations whose outcome is unknown (the client timed out) may have taken
// effect at any time after their invocation, or never: they get an infinite
// completion time and any result, so the search may place them anywhere
// after their call, including after everything else (which is "never").
// Reads with an unknown outcome constrain nothing and are dropped.
//
// A bound on search steps and cached states turns a pathological history
// into an "inconclusive" verdict instead of a hang.
//
// Deterministic; not thread-safe.
#ifndef BLIXARD_SIM_CHECKER_LINEARIZABILITY_H_
#define BLIXARD_SIM_CHECKER_LINEARIZABILITY_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace blixard::sim {

struct KvOperation {
  enum class Kind { kPut, kGet, kDelete, kCas };
  enum class Outcome {
    kOk,       // took effect (for kCas: the swap happened)
    kFail,     // definitely did not take effect (kCas: value != expected)
    kUnknown,  // may or may not have taken effect
  };
  static constexpr int64_t kNeverCompleted = std::numeric_limits<int64_t>::max();

  uint64_t id = 0;      // unique within the history, for reports
  uint64_t client = 0;  // for reports
  Kind kind = Kind::kGet;
  std::string key;
  std::string value;     // kPut / kCas: the value written
  std::optional<std::string> expected;  // kCas: required current value; nullopt = key absent
  int64_t invoke_us = 0;
  int64_t complete_us = kNeverCompleted;  // kNeverCompleted when kUnknown
  Outcome outcome = Outcome::kUnknown;
  std::optional<std::string> read;  // kGet with kOk: the value read; nullopt = absent
};

struct LinearizabilityLimits {
  uint64_t steps_max_per_key = 2'000'000;
  uint64_t cached_states_max_per_key = 500'000;
};

struct LinearizabilityResult {
  enum class Verdict { kLinearizable, kNotLinearizable, kInconclusive };
  Verdict verdict = Verdict::kLinearizable;
  std::string key;      // the key that failed or was inconclusive
  std::string detail;   // what was wrong, naming operations
  uint64_t keys_checked = 0;
  uint64_t operations_checked = 0;
  uint64_t steps = 0;   // search steps over all keys
};

const char* VerdictName(LinearizabilityResult::Verdict verdict);

// Checks the whole history (any order; grouped by key internally).
// REQUIRES: invoke_us <= complete_us for every operation; ids unique.
LinearizabilityResult CheckLinearizable(const std::vector<KvOperation>& history,
                                        const LinearizabilityLimits& limits = {});

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_CHECKER_LINEARIZABILITY_H_
