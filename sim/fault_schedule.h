// Fault schedules: an explicit, plain, serializable list of timed faults.
//
// A run's faults are decided up front (generated from a seed and a profile)
// rather than drawn on the fly, so that a failing run's schedule can be
// printed, edited, replayed and shrunk (issue 7) without the seed. A schedule
// is just a vector of Fault sorted by time; its text form is one fault per
// line:
//
//   # comments and blank lines are ignored
//   1500000 crash nodes=2
//   3000000 partition nodes=1,2 others=3,4,5
//   3100000 clock_drift nodes=4 value=-800
//   4000000 heal
//   5200000 restart nodes=2
//
// Applying a fault that no longer makes sense (restart of a node that is up,
// after shrinking dropped its crash) is a no-op, never an error.
//
// FaultInjector applies a schedule to a World, a SimNetwork and the nodes'
// SimClocks at the faults' virtual times, counting and tracing each applied
// fault. Faults the simulator's other parts own (disk errors) go to a hook.
#ifndef BLIXARD_SIM_FAULT_SCHEDULE_H_
#define BLIXARD_SIM_FAULT_SCHEDULE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/rng.h"
#include "core/base/types.h"
#include "sim/sim_clock.h"
#include "sim/sim_network.h"
#include "sim/trace.h"
#include "sim/world.h"

namespace blixard::sim {

enum class FaultKind : uint8_t {
  kCrash = 0,             // nodes
  kRestart = 1,           // nodes
  kPause = 2,             // nodes
  kResume = 3,            // nodes
  kPartition = 4,         // nodes <-/-> others
  kPartitionOneWay = 5,   // nodes -/-> others
  kIsolate = 6,           // nodes (each)
  kBridge = 7,            // nodes <-/-> others; value = the bridge node id
  kHeal = 8,              // every partition and clog
  kClog = 9,              // nodes
  kUnclog = 10,           // nodes
  kClockDrift = 11,       // nodes; value = ppm
  kClockJump = 12,        // nodes; value = microseconds forward
  kLoss = 13,             // value = loss per million
  kDuplicate = 14,        // value = duplication per million
  kDiskWriteErrors = 15,  // nodes; value = per million (applied by the hook)
  kDiskReadErrors = 16,   // nodes; value = per million (applied by the hook)
  // Membership changes, proposed through the current leader as single-server
  // raft ConfChanges (applied by the hook; no leader, a change already
  // pending, or a change that makes no sense in the leader's configuration
  // is a no-op, traced as skipped).
  kAddLearner = 17,    // nodes (each must be a non-member)
  kPromote = 18,       // nodes (learners become voters)
  kRemove = 19,        // nodes (voters or learners leave)
  kRemoveLeader = 20,  // the current leader leaves (no nodes)
};
inline constexpr int kFaultKindCount = 21;

// Whether `kind` is a membership change (applied through the `other` hook).
bool IsMembershipChange(FaultKind kind);

// Bounds that Validate enforces, so a hand-edited or fuzzed schedule cannot
// overflow virtual time.
inline constexpr SimMicros kFaultTimeMaxUs =
    365LL * 24 * 3600 * kMicrosPerSecond;
inline constexpr int64_t kClockJumpMaxUs = 3600 * kMicrosPerSecond;

// Stable names used in text and traces ("crash", "partition_one_way",
// "add_learner", ...).
absl::string_view FaultKindName(FaultKind kind);
absl::StatusOr<FaultKind> ParseFaultKind(absl::string_view name);

struct Fault {
  SimMicros at_us = 0;
  FaultKind kind = FaultKind::kHeal;
  std::vector<NodeId> nodes;
  std::vector<NodeId> others;
  int64_t value = 0;

  // One line of the text form, without '\n'.
  std::string ToText() const;
  friend bool operator==(const Fault& a, const Fault& b);
};

struct FaultSchedule {
  // Sorted by at_us; equal times apply in list order.
  std::vector<Fault> faults;

  std::string ToText() const;
  // INVALID_ARGUMENT naming the line for malformed text or unsorted times.
  static absl::StatusOr<FaultSchedule> Parse(absl::string_view text);
  // Faults by kind name, for summaries.
  std::map<std::string, uint64_t> CountByKind() const;
  // INVALID_ARGUMENT when unsorted, a time is negative, or a fault lacks the
  // nodes its kind needs.
  absl::Status Validate() const;
};

// kSwarm: the fault mix, the cluster and the workload are drawn per seed
// (sim/swarm.h); its schedule comes from GenerateFaultSchedule with the
// drawn FaultMix.
enum class FaultProfile : uint8_t { kNone = 0, kDefault = 1, kHeavy = 2, kSwarm = 3 };
absl::string_view FaultProfileName(FaultProfile profile);
// "none", "default", "heavy", "swarm"; INVALID_ARGUMENT otherwise.
absl::StatusOr<FaultProfile> ParseFaultProfile(absl::string_view name);

// A schedule for `nodes` over [0, duration_us) drawn from `rng` (by
// convention world.Stream("faults")). Every fault it starts it also ends
// before duration_us (restart after crash, resume after pause, heal after a
// partition, unclog after clog, drift back to 0, loss back to the baseline),
// so the cluster is whole again when the schedule ends. At most a minority of
// the nodes is crashed or paused at once. kHeavy also loses 1% of messages
// throughout (until duration_us - 1). kNone gives an empty schedule.
// REQUIRES: nodes non-empty, sorted, unique; duration_us >= 0.
// With `disk_faults`, it also emits disk_write_errors / disk_read_errors
// episodes (a rate, then 0) for the FaultInjector's `other` hook; off by
// default until SimDisk defines what an error does.
// REQUIRES: profile != kSwarm (swarm draws a FaultMix; use the overload).
FaultSchedule GenerateFaultSchedule(Rng rng, FaultProfile profile,
                                    const std::vector<NodeId>& nodes,
                                    SimMicros duration_us,
                                    bool disk_faults = false);

// The knobs of a generated schedule: how often episodes start, how long
// they last, how hard they hit, and the relative weight of each kind of
// episode (0: never). The fixed profiles and swarm mode fill one in.
struct FaultMix {
  SimMicros gap_min_us = 2'000'000;  // between episode starts
  SimMicros gap_max_us = 8'000'000;
  SimMicros length_min_us = 500'000;  // of one episode
  SimMicros length_max_us = 5'000'000;
  int64_t drift_ppm_max = 1000;
  uint64_t loss_per_million_max = 100'000;       // >= 1000 when weighted
  uint64_t duplicate_per_million_max = 100'000;  // >= 1000 when weighted
  // Loss from the start to the end of the schedule (loss episodes return to
  // it), so every run of the mix loses messages.
  int64_t loss_baseline_per_million = 0;
  uint64_t disk_error_per_million_max = 100'000;  // >= 1000 when weighted

  // Episode weights.
  uint64_t crash = 0;
  uint64_t pause = 0;
  uint64_t partition = 0;
  uint64_t one_way = 0;
  uint64_t isolate = 0;
  uint64_t bridge = 0;
  uint64_t swizzle = 0;
  uint64_t drift = 0;
  uint64_t jump = 0;
  uint64_t loss = 0;
  uint64_t duplicate = 0;
  uint64_t disk_write = 0;
  uint64_t disk_read = 0;
  // add a learner and promote it (sometimes replacing a voter with it),
  // remove a voter, remove the leader.
  uint64_t membership = 0;

  // INVALID_ARGUMENT naming the first bad field.
  absl::Status Validate() const;
};

// The mix of a fixed profile. REQUIRES: profile is not kNone or kSwarm.
FaultMix ProfileMix(FaultProfile profile, bool disk_faults);

// A schedule drawn from `mix`, with the same promises as the profile
// overload above. `voters` are the initial voters; `spares` are node ids
// that are not members at the start and that membership episodes may add
// (as a learner, then promoted; half the time an old voter is removed
// afterwards: a replacement). The generator models the membership it asks
// for to pick sensible targets (only members crash, are paused or
// partitioned; a removal never leaves fewer than one voter; one change per
// episode, so a majority is never removed at once), but the model can
// drift from the real one (a change skipped for want of a leader): the
// applier re-checks every change against the leader's configuration.
// REQUIRES: mix.Validate().ok(); voters non-empty; voters and spares
// sorted, unique and disjoint; duration_us >= 0.
FaultSchedule GenerateFaultSchedule(Rng rng, const FaultMix& mix,
                                    const std::vector<NodeId>& voters,
                                    const std::vector<NodeId>& spares,
                                    SimMicros duration_us);

class FaultInjector {
 public:
  struct Targets {
    World* world = nullptr;              // required
    SimNetwork* network = nullptr;       // required
    std::map<NodeId, SimClock*> clocks;  // clock faults on other nodes: no-op
    TraceWriter* trace = nullptr;  // optional: a "fault" line per applied fault
    // Optional: disk faults (and any kind the injector does not apply itself).
    // Returns whether it applied the fault.
    std::function<bool(const Fault&)> other;
  };

  explicit FaultInjector(Targets targets);

  // Schedules every fault of `schedule` as a world event at its time.
  // REQUIRES: schedule.Validate().ok(); every time >= world->now_us().
  void Schedule(const FaultSchedule& schedule);

  // Applies one fault now. Returns false (and changes nothing) when it does
  // not apply in the current state.
  bool Apply(const Fault& fault);

  // Applied faults by kind name; skipped ones separately.
  const std::map<std::string, uint64_t>& applied() const { return applied_; }
  uint64_t skipped() const { return skipped_; }

  void CheckInvariants() const;

 private:
  Targets targets_;
  std::map<std::string, uint64_t> applied_;
  uint64_t skipped_ = 0;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_FAULT_SCHEDULE_H_
