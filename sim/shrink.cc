#include "sim/shrink.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/base/check.h"

namespace blixard::sim {
namespace {

// Windows are not shortened below this: a shorter one says nothing more to
// a reader and costs runs.
constexpr SimMicros kWindowUsMin = 1'000;

template <typename T>
std::vector<T> Pick(const std::vector<T>& items, const std::vector<size_t>& indices) {
  std::vector<T> out;
  out.reserve(indices.size());
  for (size_t i : indices) out.push_back(items[i]);
  return out;
}

// Does `start` open the window that `end` closes?
bool Opens(const Fault& start, const Fault& end) {
  switch (end.kind) {
    case FaultKind::kHeal:
      return start.kind == FaultKind::kPartition || start.kind == FaultKind::kPartitionOneWay ||
             start.kind == FaultKind::kIsolate || start.kind == FaultKind::kBridge;
    case FaultKind::kUnclog:
      return start.kind == FaultKind::kClog && start.nodes == end.nodes;
    case FaultKind::kRestart:
      return start.kind == FaultKind::kCrash && start.nodes == end.nodes;
    case FaultKind::kResume:
      return start.kind == FaultKind::kPause && start.nodes == end.nodes;
    default:
      return false;
  }
}

class Shrinker {
 public:
  explicit Shrinker(const ShrinkOptions& options) : options_(options) {
    CHECK_GE(options_.runs_max, 2);
    if (!options_.run) options_.run = [](const SimulationOptions& o) { return RunSimulation(o); };
  }

  ShrinkResult Run(const SimulationOptions& failing) {
    // Swarm params drawn from the seed become explicit, so dropping a node
    // below edits them rather than the seed's draw.
    SimulationOptions original = ResolveSwarm(failing);
    original.trace = nullptr;
    original.log = nullptr;
    original.timeline = nullptr;
    ++result_.runs;
    result_.original_report = options_.run(original);
    const SimulationReport& first = result_.original_report;
    result_.failed = !first.passed;
    if (!result_.failed) return result_;
    result_.property = first.violation_property;
    original.schedule = first.schedule;
    original.ops = first.ops;
    result_.original = original;
    result_.before = Sizes(original);
    current_ = original;
    current_report_ = first;
    // The explicit replay must fail the same way, or shrinking means nothing.
    if (!Fails(original)) {
      result_.shrunk = original;
      result_.shrunk_report = first;
      result_.after = result_.before;
      return Finish();
    }
    result_.reproduced = true;
    bool progress = true;
    while (progress && !Exhausted()) {
      progress = false;
      progress |= CutDuration();
      progress |= DropFaults();
      progress |= ShortenWindows();
      progress |= DropNodes();
      progress |= DropOps();
    }
    result_.shrunk = current_;
    result_.shrunk_report = current_report_;
    result_.after = Sizes(current_);
    return Finish();
  }

 private:
  static ShrinkSizes Sizes(const SimulationOptions& o) {
    return ShrinkSizes{NodeCount(o), o.duration_us, o.schedule ? o.schedule->faults.size() : 0,
                       o.ops ? o.ops->size() : 0};
  }

  ShrinkResult Finish() {
    result_.budget_exhausted = Exhausted();
    return std::move(result_);
  }

  bool Exhausted() const { return result_.runs >= options_.runs_max; }

  // Runs a candidate; true when it fails the same way (then it becomes the
  // current best, with its report).
  bool Fails(const SimulationOptions& candidate) {
    if (Exhausted() || !candidate.Validate().ok()) return false;
    ++result_.runs;
    SimulationReport report = options_.run(candidate);
    if (report.passed || report.violation_property != result_.property) return false;
    current_ = candidate;
    current_report_ = std::move(report);
    return true;
  }

  void Progress(absl::string_view what) {
    if (options_.progress) {
      options_.progress(absl::StrCat(what, ": ", Sizes(current_).ToString(), " (run ",
                                     result_.runs, ")"));
    }
  }

  // The violation happened at violation_us; nothing after it can matter to
  // a safety violation, so the safety phase ends just after it (faults and
  // operations after it go too).
  bool CutDuration() {
    int64_t at = current_report_.violation_us;
    if (at + 1 >= current_.duration_us) {
      // Violated after the safety phase (liveness, linearizability): the
      // phase can still end just after its last fault or operation.
      at = 0;
      for (const Fault& f : current_.schedule->faults) at = std::max(at, f.at_us);
      for (const ClientOp& op : *current_.ops) at = std::max(at, op.at_us);
      if (at + 1 >= current_.duration_us) return false;
    }
    SimulationOptions candidate = current_;
    candidate.duration_us = at + 1;
    std::vector<Fault>& faults = candidate.schedule->faults;
    faults.erase(std::remove_if(faults.begin(), faults.end(),
                                [at](const Fault& f) { return f.at_us > at; }),
                 faults.end());
    std::vector<ClientOp>& ops = *candidate.ops;
    ops.erase(std::remove_if(ops.begin(), ops.end(),
                             [at](const ClientOp& op) { return op.at_us > at; }),
              ops.end());
    if (!Fails(candidate)) return false;
    Progress("cut the duration");
    return true;
  }

  bool DropFaults() {
    const size_t before = current_.schedule->faults.size();
    const std::vector<Fault> all = current_.schedule->faults;
    const SimulationOptions base = current_;
    DdMin(
        all.size(),
        [&](const std::vector<size_t>& keep) {
          SimulationOptions candidate = base;
          candidate.schedule->faults = Pick(all, keep);
          return Fails(candidate);
        },
        [this] { return Exhausted(); });
    if (current_.schedule->faults.size() == before) return false;
    Progress("dropped faults");
    return true;
  }

  bool DropOps() {
    const size_t before = current_.ops->size();
    const std::vector<ClientOp> all = *current_.ops;
    const SimulationOptions base = current_;
    DdMin(
        all.size(),
        [&](const std::vector<size_t>& keep) {
          SimulationOptions candidate = base;
          candidate.ops = Pick(all, keep);
          return Fails(candidate);
        },
        [this] { return Exhausted(); });
    if (current_.ops->size() == before) return false;
    Progress("dropped client operations");
    return true;
  }

  // Shortens each fault window while the violation persists: first moves
  // its end (heal, unclog, restart, resume) halfway towards its start, then
  // its start halfway towards its end, repeatedly; so a window shrinks to
  // the part the violation needs from either side.
  bool ShortenWindows() {
    bool shortened = false;
    for (size_t e = 0; e < current_.schedule->faults.size() && !Exhausted(); ++e) {
      while (!Exhausted()) {
        const std::vector<Fault>& faults = current_.schedule->faults;
        std::optional<size_t> start;
        for (size_t s = e; s-- > 0;) {
          if (Opens(faults[s], faults[e])) {
            start = s;
            break;
          }
        }
        if (!start) break;
        const SimMicros length = faults[e].at_us - faults[*start].at_us;
        if (length < 2 * kWindowUsMin) break;
        const std::optional<size_t> moved = TryMove(e, faults[*start].at_us + length / 2, *start + 1);
        if (!moved) break;
        shortened = true;
        e = *moved;  // follow the moved fault
      }
    }
    for (size_t s = 0; s < current_.schedule->faults.size() && !Exhausted(); ++s) {
      while (!Exhausted()) {
        const std::vector<Fault>& faults = current_.schedule->faults;
        std::optional<size_t> end;
        for (size_t e = s + 1; e < faults.size(); ++e) {
          if (Opens(faults[s], faults[e])) {
            end = e;
            break;
          }
        }
        if (!end) break;
        const SimMicros length = faults[*end].at_us - faults[s].at_us;
        if (length < 2 * kWindowUsMin) break;
        const std::optional<size_t> moved = TryMove(s, faults[s].at_us + length / 2, s);
        if (!moved) break;
        shortened = true;
        s = *moved;
      }
    }
    if (shortened) Progress("shortened fault windows");
    return shortened;
  }

  // Tries the current run with fault `index` moved to time `at_us`,
  // re-inserted at or after `from` (an index in the list without it) and
  // after every fault at or before its new time, so the list stays sorted
  // and equal times keep their order. Returns its new index if the
  // candidate fails the same way (and is now current).
  std::optional<size_t> TryMove(size_t index, SimMicros at_us, size_t from) {
    SimulationOptions candidate = current_;
    std::vector<Fault>& faults = candidate.schedule->faults;
    Fault fault = faults[index];
    fault.at_us = at_us;
    faults.erase(faults.begin() + static_cast<ptrdiff_t>(index));
    size_t at = std::min(from, faults.size());
    while (at < faults.size() && faults[at].at_us <= at_us) ++at;
    faults.insert(faults.begin() + static_cast<ptrdiff_t>(at), fault);
    if (!Fails(candidate)) return std::nullopt;
    return at;
  }

  bool DropNodes() {
    bool dropped = false;
    while (NodeCount(current_) > 1 && !Exhausted()) {
      if (!Fails(WithoutHighestNode(current_))) break;
      dropped = true;
    }
    if (dropped) Progress("dropped nodes");
    return dropped;
  }

  ShrinkOptions options_;
  ShrinkResult result_;
  SimulationOptions current_;
  SimulationReport current_report_;
};

}  // namespace

std::string ShrinkSizes::ToString() const {
  return absl::StrCat(nodes, " nodes, ", absl::FormatDuration(absl::Microseconds(duration_us)),
                      ", ", faults, " faults, ", ops, " ops");
}

std::vector<size_t> DdMin(size_t n,
                          const std::function<bool(const std::vector<size_t>&)>& fails,
                          const std::function<bool()>& stop) {
  std::vector<size_t> current(n);
  for (size_t i = 0; i < n; ++i) current[i] = i;
  if (n == 0 || stop()) return current;
  if (fails({})) return {};
  size_t granularity = 2;
  while (current.size() >= 2 && !stop()) {
    granularity = std::min(granularity, current.size());
    // `granularity` chunks of nearly equal size, in order.
    std::vector<std::vector<size_t>> chunks(granularity);
    for (size_t i = 0; i < current.size(); ++i) {
      chunks[i * granularity / current.size()].push_back(current[i]);
    }
    bool reduced = false;
    // A chunk alone fails: continue with it, split in two.
    for (size_t c = 0; c < chunks.size() && !reduced && !stop(); ++c) {
      if (chunks.size() > 2 && fails(chunks[c])) {
        current = chunks[c];
        granularity = 2;
        reduced = true;
      }
    }
    // Without one chunk it fails: continue with the complement, one chunk
    // fewer. (With two chunks a complement is the other chunk.)
    for (size_t c = 0; c < chunks.size() && !reduced && !stop(); ++c) {
      std::vector<size_t> complement;
      for (size_t other = 0; other < chunks.size(); ++other) {
        if (other != c) complement.insert(complement.end(), chunks[other].begin(), chunks[other].end());
      }
      if (fails(complement)) {
        current = std::move(complement);
        granularity = std::max<size_t>(granularity - 1, 2);
        reduced = true;
      }
    }
    if (reduced) continue;
    if (granularity >= current.size()) break;  // 1-minimal
    granularity = std::min(granularity * 2, current.size());
  }
  return current;
}

int NodeCount(const SimulationOptions& options) {
  return options.swarm.has_value() ? options.swarm->nodes + options.swarm->spares
                                   : options.nodes;
}

SimulationOptions WithoutHighestNode(const SimulationOptions& options) {
  CHECK_GT(NodeCount(options), 1);
  CHECK(options.schedule.has_value());
  CHECK(options.ops.has_value());
  SimulationOptions out = options;
  const NodeId gone(static_cast<uint64_t>(NodeCount(options)));
  if (!options.swarm.has_value()) {
    out.nodes = options.nodes - 1;
  } else if (options.swarm->spares > 0) {
    --out.swarm->spares;  // swarm ids: voters 1..nodes, then the spares
  } else {
    --out.swarm->nodes;
    out.nodes = out.swarm->nodes;
  }
  std::vector<Fault> faults;
  for (Fault fault : options.schedule->faults) {
    auto drop = [gone](std::vector<NodeId>& nodes) {
      nodes.erase(std::remove(nodes.begin(), nodes.end(), gone), nodes.end());
    };
    const bool had_nodes = !fault.nodes.empty();
    const bool had_others = !fault.others.empty();
    drop(fault.nodes);
    drop(fault.others);
    if (had_nodes && fault.nodes.empty()) continue;
    if (had_others && fault.others.empty()) continue;
    if (fault.kind == FaultKind::kBridge && fault.value == static_cast<int64_t>(gone.value())) {
      continue;
    }
    faults.push_back(std::move(fault));
  }
  out.schedule->faults = std::move(faults);
  std::vector<ClientOp> ops;
  for (const ClientOp& op : *options.ops) {
    if (op.request.command().has_set_worker_status() &&
        op.request.command().set_worker_status().node_id() == gone.value()) {
      continue;
    }
    ops.push_back(op);
  }
  out.ops = std::move(ops);
  return out;
}

ShrinkResult Shrink(const SimulationOptions& failing, const ShrinkOptions& options) {
  CHECK_OK(failing.Validate());
  Shrinker shrinker(options);
  return shrinker.Run(failing);
}

}  // namespace blixard::sim
