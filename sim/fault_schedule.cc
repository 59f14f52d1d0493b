#include "sim/fault_schedule.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/check.h"

namespace blixard::sim {
namespace {

constexpr absl::string_view kKindNames[kFaultKindCount] = {
    "crash",
    "restart",
    "pause",
    "resume",
    "partition",
    "partition_one_way",
    "isolate",
    "bridge",
    "heal",
    "clog",
    "unclog",
    "clock_drift",
    "clock_jump",
    "loss",
    "duplicate",
    "disk_write_errors",
    "disk_read_errors",
    "add_learner",
    "promote",
    "remove",
    "remove_leader",
};

std::string JoinNodes(const std::vector<NodeId>& nodes) {
  return absl::StrJoin(nodes, ",", [](std::string* out, NodeId id) {
    absl::StrAppend(out, id.value());
  });
}

bool NeedsNodes(FaultKind kind) {
  switch (kind) {
    case FaultKind::kHeal:
    case FaultKind::kLoss:
    case FaultKind::kDuplicate:
    case FaultKind::kRemoveLeader:
      return false;
    default:
      return true;
  }
}

bool NeedsOthers(FaultKind kind) {
  return kind == FaultKind::kPartition || kind == FaultKind::kPartitionOneWay ||
         kind == FaultKind::kBridge;
}

bool Contains(const std::vector<NodeId>& nodes, NodeId id) {
  return std::find(nodes.begin(), nodes.end(), id) != nodes.end();
}

absl::StatusOr<std::vector<NodeId>> ParseNodes(absl::string_view text) {
  std::vector<NodeId> nodes;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    uint64_t id = 0;
    if (!absl::SimpleAtoi(part, &id) || id == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad node id \"", part, "\""));
    }
    nodes.push_back(NodeId(id));
  }
  return nodes;
}

// Fisher-Yates with our Rng.
void Shuffle(std::vector<NodeId>& nodes, Rng& rng) {
  for (size_t i = nodes.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.Uniform(i));
    std::swap(nodes[i - 1], nodes[j]);
  }
}

std::vector<NodeId> Sorted(std::vector<NodeId> nodes) {
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

enum Episode : size_t {
  kEpCrash = 0,
  kEpPause,
  kEpPartition,
  kEpOneWay,
  kEpIsolate,
  kEpBridge,
  kEpSwizzle,
  kEpDrift,
  kEpJump,
  kEpLoss,
  kEpDuplicate,
  kEpDiskWrite,
  kEpDiskRead,
  kEpMembership,
  kEpCount,
};

// In Episode order. The membership weight comes last, so a mix without it
// draws exactly what the profiles drew before membership changes existed.
std::vector<uint64_t> Weights(const FaultMix& m) {
  return {m.crash,    m.pause, m.partition, m.one_way, m.isolate,
          m.bridge,   m.swizzle, m.drift,   m.jump,    m.loss,
          m.duplicate, m.disk_write, m.disk_read, m.membership};
}

size_t PickWeighted(const std::vector<uint64_t>& weights, Rng& rng) {
  uint64_t total = 0;
  for (uint64_t w : weights) total += w;
  uint64_t draw = rng.Uniform(total);
  for (size_t i = 0; i < weights.size(); ++i) {
    if (draw < weights[i]) return i;
    draw -= weights[i];
  }
  return weights.size() - 1;
}

}  // namespace

absl::string_view FaultKindName(FaultKind kind) {
  const auto i = static_cast<size_t>(kind);
  CHECK_LT(i, static_cast<size_t>(kFaultKindCount));
  return kKindNames[i];
}

bool IsMembershipChange(FaultKind kind) {
  return kind == FaultKind::kAddLearner || kind == FaultKind::kPromote ||
         kind == FaultKind::kRemove || kind == FaultKind::kRemoveLeader;
}

absl::StatusOr<FaultKind> ParseFaultKind(absl::string_view name) {
  for (int i = 0; i < kFaultKindCount; ++i) {
    if (kKindNames[i] == name) return static_cast<FaultKind>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown fault kind \"", name, "\""));
}

std::string Fault::ToText() const {
  std::string out = absl::StrCat(at_us, " ", FaultKindName(kind));
  if (!nodes.empty()) absl::StrAppend(&out, " nodes=", JoinNodes(nodes));
  if (!others.empty()) absl::StrAppend(&out, " others=", JoinNodes(others));
  if (value != 0) absl::StrAppend(&out, " value=", value);
  return out;
}

bool operator==(const Fault& a, const Fault& b) {
  return a.at_us == b.at_us && a.kind == b.kind && a.nodes == b.nodes &&
         a.others == b.others && a.value == b.value;
}

std::string FaultSchedule::ToText() const {
  std::string out;
  for (const Fault& fault : faults) absl::StrAppend(&out, fault.ToText(), "\n");
  return out;
}

absl::StatusOr<FaultSchedule> FaultSchedule::Parse(absl::string_view text) {
  FaultSchedule schedule;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("fault schedule line ", line_number, ": ", what));
    };
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> tokens =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (tokens.size() < 2)
      return error("want \"<at_us> <kind> [key=value]...\"");
    Fault fault;
    if (!absl::SimpleAtoi(tokens[0], &fault.at_us)) return error("bad time");
    absl::StatusOr<FaultKind> kind = ParseFaultKind(tokens[1]);
    if (!kind.ok()) return error(kind.status().message());
    fault.kind = *kind;
    for (size_t i = 2; i < tokens.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(tokens[i], absl::MaxSplits('=', 1));
      if (kv.first == "nodes" || kv.first == "others") {
        absl::StatusOr<std::vector<NodeId>> nodes = ParseNodes(kv.second);
        if (!nodes.ok()) return error(nodes.status().message());
        (kv.first == "nodes" ? fault.nodes : fault.others) = *std::move(nodes);
      } else if (kv.first == "value") {
        if (!absl::SimpleAtoi(kv.second, &fault.value))
          return error("bad value");
      } else {
        return error(absl::StrCat("unknown key \"", kv.first, "\""));
      }
    }
    schedule.faults.push_back(std::move(fault));
  }
  absl::Status valid = schedule.Validate();
  if (!valid.ok()) return valid;
  return schedule;
}

absl::Status FaultSchedule::Validate() const {
  SimMicros last = 0;
  for (size_t i = 0; i < faults.size(); ++i) {
    const Fault& f = faults[i];
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("fault ", i, " (", f.ToText(), "): ", what));
    };
    if (f.at_us < 0) return error("negative time");
    if (f.at_us > kFaultTimeMaxUs) return error("time beyond kFaultTimeMaxUs");
    if (f.at_us < last) return error("times must not decrease");
    last = f.at_us;
    if (NeedsNodes(f.kind) && f.nodes.empty()) return error("needs nodes=");
    if (NeedsOthers(f.kind) && f.others.empty()) return error("needs others=");
    for (NodeId x : f.nodes) {
      if (Contains(f.others, x)) return error("a node on both sides");
    }
    switch (f.kind) {
      case FaultKind::kBridge:
        if (f.value <= 0) return error("bridge needs value=<node id>");
        if (Contains(f.nodes, NodeId(static_cast<uint64_t>(f.value))) ||
            Contains(f.others, NodeId(static_cast<uint64_t>(f.value)))) {
          return error("the bridge node is in a group");
        }
        break;
      case FaultKind::kClockDrift:
        if (f.value > SimClock::kDriftPpmMax ||
            f.value < -SimClock::kDriftPpmMax) {
          return error("drift beyond SimClock::kDriftPpmMax");
        }
        break;
      case FaultKind::kClockJump:
        if (f.value < 0) return error("a monotonic clock only jumps forward");
        if (f.value > kClockJumpMaxUs)
          return error("jump beyond kClockJumpMaxUs");
        break;
      case FaultKind::kLoss:
      case FaultKind::kDuplicate:
      case FaultKind::kDiskWriteErrors:
      case FaultKind::kDiskReadErrors:
        if (f.value < 0 || f.value > 1'000'000)
          return error("rate not in [0, 1e6]");
        break;
      case FaultKind::kAddLearner:
      case FaultKind::kPromote:
      case FaultKind::kRemove:
      case FaultKind::kRemoveLeader:
        if (!f.others.empty()) return error("a membership change takes no others=");
        if (f.value != 0) return error("a membership change takes no value=");
        // Single-server changes only: one node per change, so no schedule
        // can ask for a majority to leave at once.
        if (f.kind != FaultKind::kRemoveLeader && f.nodes.size() != 1) {
          return error("a membership change names exactly one node");
        }
        if (f.kind == FaultKind::kRemoveLeader && !f.nodes.empty()) {
          return error("remove_leader takes no nodes= (it removes whoever leads)");
        }
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

std::map<std::string, uint64_t> FaultSchedule::CountByKind() const {
  std::map<std::string, uint64_t> counts;
  for (const Fault& f : faults) ++counts[std::string(FaultKindName(f.kind))];
  return counts;
}

absl::string_view FaultProfileName(FaultProfile profile) {
  switch (profile) {
    case FaultProfile::kNone:
      return "none";
    case FaultProfile::kDefault:
      return "default";
    case FaultProfile::kHeavy:
      return "heavy";
    case FaultProfile::kSwarm:
      return "swarm";
  }
  return "?";
}

absl::StatusOr<FaultProfile> ParseFaultProfile(absl::string_view name) {
  if (name == "none") return FaultProfile::kNone;
  if (name == "default") return FaultProfile::kDefault;
  if (name == "heavy") return FaultProfile::kHeavy;
  if (name == "swarm") return FaultProfile::kSwarm;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown fault profile \"", name,
      "\" (want none, default, heavy or swarm)"));
}

absl::Status FaultMix::Validate() const {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("fault mix: ", what));
  };
  if (gap_min_us < 1 || gap_max_us < gap_min_us) {
    return bad("want 1 <= gap_min_us <= gap_max_us");
  }
  if (length_min_us < 1 || length_max_us < length_min_us) {
    return bad("want 1 <= length_min_us <= length_max_us");
  }
  if (gap_max_us > kFaultTimeMaxUs || length_max_us > kFaultTimeMaxUs) {
    return bad("gap or length beyond kFaultTimeMaxUs");
  }
  if (drift_ppm_max < 0 || drift_ppm_max > SimClock::kDriftPpmMax) {
    return bad("drift_ppm_max not in [0, SimClock::kDriftPpmMax]");
  }
  if (loss_per_million_max > 1'000'000 || duplicate_per_million_max > 1'000'000 ||
      disk_error_per_million_max > 1'000'000 || loss_baseline_per_million < 0 ||
      loss_baseline_per_million > 1'000'000) {
    return bad("a rate beyond 1e6 per million");
  }
  // Episode rates are drawn from [1000, max].
  if (loss > 0 && loss_per_million_max < 1'000) return bad("loss episodes with max < 1000");
  if (duplicate > 0 && duplicate_per_million_max < 1'000) {
    return bad("duplicate episodes with max < 1000");
  }
  if ((disk_write > 0 || disk_read > 0) && disk_error_per_million_max < 1'000) {
    return bad("disk episodes with max < 1000");
  }
  uint64_t total = 0;
  for (uint64_t w : Weights(*this)) {
    if (w > 1'000'000) return bad("a weight above 1e6");
    total += w;
  }
  if (total == 0) return bad("every weight is 0");
  return absl::OkStatus();
}

FaultMix ProfileMix(FaultProfile profile, bool disk_faults) {
  CHECK(profile == FaultProfile::kDefault || profile == FaultProfile::kHeavy)
      << FaultProfileName(profile);
  FaultMix m;
  if (profile == FaultProfile::kHeavy) {
    m.gap_min_us = 200'000;
    m.gap_max_us = 2'000'000;
    m.length_min_us = 200'000;
    m.length_max_us = 5'000'000;
    m.drift_ppm_max = SimClock::kDriftPpmMax;
    m.loss_per_million_max = 300'000;
    m.duplicate_per_million_max = 300'000;
    m.loss_baseline_per_million = 10'000;
    m.crash = 4, m.pause = 3, m.partition = 3, m.one_way = 2, m.isolate = 2;
    m.bridge = 2, m.swizzle = 1, m.drift = 1, m.jump = 1, m.loss = 2;
    m.duplicate = 1, m.disk_write = 1, m.disk_read = 1;
  } else {
    m.crash = 3, m.pause = 2, m.partition = 3, m.one_way = 1, m.isolate = 1;
    m.bridge = 1, m.swizzle = 1, m.drift = 1, m.jump = 1, m.loss = 1;
    m.duplicate = 1, m.disk_write = 1, m.disk_read = 1;
  }
  if (!disk_faults) {
    m.disk_write = 0;
    m.disk_read = 0;
  }
  return m;
}

FaultSchedule GenerateFaultSchedule(Rng rng, FaultProfile profile,
                                    const std::vector<NodeId>& nodes,
                                    SimMicros duration_us, bool disk_faults) {
  CHECK(profile != FaultProfile::kSwarm) << "swarm mode draws a FaultMix";
  if (profile == FaultProfile::kNone) {
    CHECK(!nodes.empty());
    return FaultSchedule{};
  }
  return GenerateFaultSchedule(std::move(rng), ProfileMix(profile, disk_faults), nodes,
                               {}, duration_us);
}

FaultSchedule GenerateFaultSchedule(Rng rng, const FaultMix& mix,
                                    const std::vector<NodeId>& voters,
                                    const std::vector<NodeId>& spares,
                                    SimMicros duration_us) {
  CHECK_OK(mix.Validate());
  CHECK(!voters.empty());
  CHECK(std::is_sorted(voters.begin(), voters.end()));
  CHECK(std::adjacent_find(voters.begin(), voters.end()) == voters.end());
  CHECK(std::is_sorted(spares.begin(), spares.end()));
  CHECK(std::adjacent_find(spares.begin(), spares.end()) == spares.end());
  for (NodeId s : spares) CHECK(!Contains(voters, s)) << s;
  CHECK_GE(duration_us, 0);
  FaultSchedule schedule;
  const FaultMix& p = mix;
  const std::vector<uint64_t> weights = Weights(mix);
  CHECK_EQ(weights.size(), static_cast<size_t>(kEpCount));
  // The membership the schedule asks for (see the header: a model, not the
  // truth). `nodes` are the members (voters and learners): only they are
  // crashed, paused, partitioned or drifted.
  std::vector<NodeId> nodes = voters;
  std::vector<NodeId> model_voters = voters;
  std::vector<NodeId> unused_spares = spares;
  // No membership episode starts before the last one's steps are all out.
  SimMicros membership_until = 0;

  std::map<NodeId, SimMicros> down_until;   // crashed or paused
  std::map<NodeId, SimMicros> clock_until;  // drifting
  std::map<NodeId, SimMicros> disk_until;   // disk errors on
  SimMicros network_until = 0;              // partition or swizzle active
  SimMicros loss_until = 0;
  SimMicros duplicate_until = 0;
  std::vector<Fault>& out = schedule.faults;
  auto emit = [&out](SimMicros at, FaultKind kind, std::vector<NodeId> a,
                     std::vector<NodeId> b = {}, int64_t value = 0) {
    out.push_back(
        Fault{at, kind, Sorted(std::move(a)), Sorted(std::move(b)), value});
  };
  auto draw = [&rng](SimMicros lo, SimMicros hi) {
    return static_cast<SimMicros>(
        rng.Range(static_cast<uint64_t>(lo), static_cast<uint64_t>(hi)));
  };

  const bool baseline_loss = p.loss_baseline_per_million > 0 && duration_us > 1;
  if (baseline_loss)
    emit(0, FaultKind::kLoss, {}, {}, p.loss_baseline_per_million);
  SimMicros t = draw(p.gap_min_us, p.gap_max_us);
  while (t < duration_us) {
    const size_t n = nodes.size();
    const size_t down_max = (n - 1) / 2;
    const size_t episode = PickWeighted(weights, rng);
    const SimMicros end =
        std::min(t + draw(p.length_min_us, p.length_max_us), duration_us - 1);
    if (end > t) {
      switch (episode) {
        case kEpCrash:
        case kEpPause: {
          std::vector<NodeId> up;
          size_t down = 0;
          for (NodeId id : nodes) {
            if (down_until[id] > t) {
              ++down;
            } else {
              up.push_back(id);
            }
          }
          if (down >= down_max || up.empty()) break;
          const NodeId victim = up[rng.Uniform(up.size())];
          const bool crash = episode == kEpCrash;
          emit(t, crash ? FaultKind::kCrash : FaultKind::kPause, {victim});
          emit(end, crash ? FaultKind::kRestart : FaultKind::kResume, {victim});
          down_until[victim] = end + 1;
          break;
        }
        case kEpPartition:
        case kEpOneWay:
        case kEpIsolate:
        case kEpBridge: {
          if (network_until > t || n < 2) break;
          if (episode == kEpBridge && n < 3) break;
          std::vector<NodeId> order = nodes;
          Shuffle(order, rng);
          if (episode == kEpIsolate) {
            emit(t, FaultKind::kIsolate, {order[0]});
          } else if (episode == kEpBridge) {
            const NodeId bridge = order[0];
            const size_t split = 1 + static_cast<size_t>(rng.Uniform(n - 2));
            emit(t, FaultKind::kBridge,
                 std::vector<NodeId>(
                     order.begin() + 1,
                     order.begin() + static_cast<ptrdiff_t>(split) + 1),
                 std::vector<NodeId>(
                     order.begin() + static_cast<ptrdiff_t>(split) + 1,
                     order.end()),
                 static_cast<int64_t>(bridge.value()));
          } else {
            const size_t split = 1 + static_cast<size_t>(rng.Uniform(n - 1));
            std::vector<NodeId> a(
                order.begin(), order.begin() + static_cast<ptrdiff_t>(split));
            std::vector<NodeId> b(order.begin() + static_cast<ptrdiff_t>(split),
                                  order.end());
            emit(t,
                 episode == kEpPartition ? FaultKind::kPartition
                                         : FaultKind::kPartitionOneWay,
                 a, b);
          }
          emit(end, FaultKind::kHeal, {});
          network_until = end + 1;
          break;
        }
        case kEpSwizzle: {
          // Clog a random subset one node at a time, then unclog in another
          // random order (FoundationDB's swizzle-clog).
          if (network_until > t) break;
          std::vector<NodeId> order = nodes;
          Shuffle(order, rng);
          const size_t k = 1 + static_cast<size_t>(rng.Uniform(n));
          order.resize(k);
          const SimMicros step = std::max<SimMicros>(
              1, (end - t) / static_cast<SimMicros>(2 * k + 1));
          for (size_t i = 0; i < k; ++i) {
            emit(t + static_cast<SimMicros>(i) * step, FaultKind::kClog,
                 {order[i]});
          }
          Shuffle(order, rng);
          for (size_t i = 0; i < k; ++i) {
            emit(std::min(end, t + static_cast<SimMicros>(k + i) * step),
                 FaultKind::kUnclog, {order[i]});
          }
          network_until = end + 1;
          break;
        }
        case kEpDrift: {
          const NodeId victim = nodes[rng.Uniform(n)];
          if (clock_until[victim] > t) break;
          const int64_t ppm =
              static_cast<int64_t>(
                  rng.Uniform(static_cast<uint64_t>(2 * p.drift_ppm_max + 1))) -
              p.drift_ppm_max;
          emit(t, FaultKind::kClockDrift, {victim}, {}, ppm);
          emit(end, FaultKind::kClockDrift, {victim}, {}, 0);
          clock_until[victim] = end + 1;
          break;
        }
        case kEpJump: {
          const NodeId victim = nodes[rng.Uniform(n)];
          emit(t, FaultKind::kClockJump, {victim}, {},
               draw(kMicrosPerMilli, kMicrosPerSecond));
          break;
        }
        case kEpLoss:
        case kEpDuplicate: {
          const bool loss = episode == kEpLoss;
          SimMicros& until = loss ? loss_until : duplicate_until;
          if (until > t) break;
          const uint64_t max =
              loss ? p.loss_per_million_max : p.duplicate_per_million_max;
          const auto rate = static_cast<int64_t>(rng.Range(1'000, max));
          const FaultKind kind =
              loss ? FaultKind::kLoss : FaultKind::kDuplicate;
          emit(t, kind, {}, {}, rate);
          emit(end, kind, {}, {},
               loss && baseline_loss ? p.loss_baseline_per_million : 0);
          until = end + 1;
          break;
        }
        case kEpDiskWrite:
        case kEpDiskRead: {
          const NodeId victim = nodes[rng.Uniform(n)];
          if (disk_until[victim] > t) break;
          const FaultKind kind = episode == kEpDiskWrite
                                     ? FaultKind::kDiskWriteErrors
                                     : FaultKind::kDiskReadErrors;
          emit(t, kind, {victim}, {},
               static_cast<int64_t>(rng.Range(1'000, p.disk_error_per_million_max)));
          emit(end, kind, {victim}, {}, 0);
          disk_until[victim] = end + 1;
          break;
        }
        case kEpMembership: {
          if (membership_until > t) break;
          // Add a spare (as a learner, promoted at the episode's end; half
          // the time an old voter then leaves: a replacement), or remove a
          // voter, or remove whoever leads.
          const uint64_t roll = rng.Uniform(4);
          if (roll < 2 && !unused_spares.empty()) {
            const NodeId added = unused_spares.front();
            unused_spares.erase(unused_spares.begin());
            emit(t, FaultKind::kAddLearner, {added});
            emit(end, FaultKind::kPromote, {added});
            nodes.insert(std::upper_bound(nodes.begin(), nodes.end(), added), added);
            model_voters.insert(
                std::upper_bound(model_voters.begin(), model_voters.end(), added), added);
            membership_until = end + 1;
            const SimMicros replace_at = end + draw(p.length_min_us, p.length_max_us);
            if (roll == 1 && replace_at < duration_us - 1) {
              // Never the node just added.
              std::vector<NodeId> old = model_voters;
              old.erase(std::find(old.begin(), old.end(), added));
              const NodeId gone = old[rng.Uniform(old.size())];
              emit(replace_at, FaultKind::kRemove, {gone});
              model_voters.erase(std::find(model_voters.begin(), model_voters.end(), gone));
              nodes.erase(std::find(nodes.begin(), nodes.end(), gone));
              membership_until = replace_at + 1;
            }
          } else if (model_voters.size() >= 2) {
            // Removing one of two voters leaves one: still a quorum of the
            // new configuration, never below one voter.
            const bool leader = rng.Chance(1, 3);
            const NodeId gone = model_voters[rng.Uniform(model_voters.size())];
            if (leader) {
              emit(t, FaultKind::kRemoveLeader, {});
            } else {
              emit(t, FaultKind::kRemove, {gone});
            }
            model_voters.erase(std::find(model_voters.begin(), model_voters.end(), gone));
            nodes.erase(std::find(nodes.begin(), nodes.end(), gone));
            membership_until = end + 1;
          }
          break;
        }
        default:
          CHECK(false) << "episode " << episode;
      }
    }
    t += draw(p.gap_min_us, p.gap_max_us);
  }
  // After every episode's end (stable sort keeps list order at equal times).
  if (baseline_loss) emit(duration_us - 1, FaultKind::kLoss, {}, {}, 0);
  std::stable_sort(out.begin(), out.end(), [](const Fault& a, const Fault& b) {
    return a.at_us < b.at_us;
  });
  CHECK_OK(schedule.Validate());
  return schedule;
}

FaultInjector::FaultInjector(Targets targets) : targets_(std::move(targets)) {
  CHECK(targets_.world != nullptr);
  CHECK(targets_.network != nullptr);
}

void FaultInjector::Schedule(const FaultSchedule& schedule) {
  CHECK_OK(schedule.Validate());
  for (const Fault& fault : schedule.faults) {
    targets_.world->Schedule(fault.at_us, kNoNode,
                             [this, fault] { Apply(fault); });
  }
}

bool FaultInjector::Apply(const Fault& fault) {
  World& world = *targets_.world;
  SimNetwork& network = *targets_.network;
  bool applied = false;
  auto each = [&](auto&& fn) {
    for (NodeId id : fault.nodes) {
      if (world.HasNode(id) && fn(id)) applied = true;
    }
  };
  switch (fault.kind) {
    case FaultKind::kCrash:
      each([&](NodeId id) { return world.Crash(id); });
      break;
    case FaultKind::kRestart:
      each([&](NodeId id) { return world.Restart(id); });
      break;
    case FaultKind::kPause:
      each([&](NodeId id) { return world.Pause(id); });
      break;
    case FaultKind::kResume:
      each([&](NodeId id) { return world.Resume(id); });
      break;
    case FaultKind::kPartition:
      network.Partition(fault.nodes, fault.others);
      applied = true;
      break;
    case FaultKind::kPartitionOneWay:
      network.PartitionOneWay(fault.nodes, fault.others);
      applied = true;
      break;
    case FaultKind::kIsolate:
      each([&](NodeId id) {
        network.Isolate(id);
        return true;
      });
      break;
    case FaultKind::kBridge:
      network.Bridge(fault.nodes, fault.others,
                     NodeId(static_cast<uint64_t>(fault.value)));
      applied = true;
      break;
    case FaultKind::kHeal:
      network.Heal();
      applied = true;
      break;
    case FaultKind::kClog:
      each([&](NodeId id) { return network.Clog(id); });
      break;
    case FaultKind::kUnclog:
      each([&](NodeId id) { return network.Unclog(id); });
      break;
    case FaultKind::kClockDrift:
    case FaultKind::kClockJump:
      for (NodeId id : fault.nodes) {
        auto it = targets_.clocks.find(id);
        if (it == targets_.clocks.end()) continue;
        if (fault.kind == FaultKind::kClockDrift) {
          it->second->SetDrift(fault.value);
        } else {
          it->second->JumpForward(fault.value);
        }
        applied = true;
      }
      break;
    case FaultKind::kLoss:
      network.SetLossPerMillion(static_cast<uint64_t>(fault.value));
      applied = true;
      break;
    case FaultKind::kDuplicate:
      network.SetDuplicatePerMillion(static_cast<uint64_t>(fault.value));
      applied = true;
      break;
    case FaultKind::kDiskWriteErrors:
    case FaultKind::kDiskReadErrors:
    case FaultKind::kAddLearner:
    case FaultKind::kPromote:
    case FaultKind::kRemove:
    case FaultKind::kRemoveLeader:
      applied = targets_.other && targets_.other(fault);
      break;
  }
  if (!applied) {
    ++skipped_;
    return false;
  }
  ++applied_[std::string(FaultKindName(fault.kind))];
  if (targets_.trace != nullptr) {
    JsonLine extra;
    if (!fault.others.empty()) extra.Nodes("others", fault.others);
    if (fault.value != 0 || fault.kind == FaultKind::kClockDrift ||
        fault.kind == FaultKind::kLoss || fault.kind == FaultKind::kDuplicate) {
      extra.Int("value", fault.value);
    }
    targets_.trace->Fault(world.now_us(), FaultKindName(fault.kind),
                          fault.nodes, extra);
  }
  return true;
}

void FaultInjector::CheckInvariants() const {
  CHECK(targets_.world != nullptr);
  CHECK(targets_.network != nullptr);
  for (const auto& [kind, count] : applied_) {
    CHECK(ParseFaultKind(kind).ok()) << kind;
    CHECK_GT(count, 0u) << kind;
  }
  for (const auto& [node, clock] : targets_.clocks)
    CHECK(clock != nullptr) << node;
}

}  // namespace blixard::sim
