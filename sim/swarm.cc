#include "sim/swarm.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/check.h"
#include "core/host/snapshot_stream.h"
#include "core/raft/config.h"
#include "sim/sim_clock.h"

namespace blixard::sim {
namespace {

// Bounds Validate enforces beyond what the parts' own validation checks.
constexpr int kElectionTicksMax = 100;
constexpr uint64_t kMaxSizePerMsgMax = 1 << 20;
constexpr int kClientsMax = 16;
constexpr int kKeysMax = 64;
constexpr uint64_t kWeightMax = 100;

// One field of the text form: how to print it and how to parse it back.
struct Field {
  const char* name;
  std::function<std::string(const SwarmParams&)> print;
  std::function<bool(absl::string_view, SwarmParams&)> parse;
};

template <typename T>
Field Number(const char* name, T SwarmParams::*member) {
  return Field{name,
               [member](const SwarmParams& p) { return absl::StrCat(p.*member); },
               [member](absl::string_view text, SwarmParams& p) {
                 return absl::SimpleAtoi(text, &(p.*member));
               }};
}

const std::vector<Field>& Fields() {
  static const std::vector<Field>* fields = new std::vector<Field>{
      Number("nodes", &SwarmParams::nodes),
      Number("spares", &SwarmParams::spares),
      Number("election_ticks", &SwarmParams::election_ticks),
      Number("heartbeat_ticks", &SwarmParams::heartbeat_ticks),
      Number("max_size_per_msg", &SwarmParams::max_size_per_msg),
      Number("max_inflight_msgs", &SwarmParams::max_inflight_msgs),
      Number("snapshot_chunk_bytes", &SwarmParams::snapshot_chunk_bytes),
      Number("latency_min_us", &SwarmParams::latency_min_us),
      Number("latency_typical_us", &SwarmParams::latency_typical_us),
      Number("tail_per_million", &SwarmParams::tail_per_million),
      Number("tail_multiplier_max", &SwarmParams::tail_multiplier_max),
      Field{"fifo_links", [](const SwarmParams& p) { return std::string(p.fifo_links ? "1" : "0"); },
            [](absl::string_view text, SwarmParams& p) {
              if (text != "0" && text != "1") return false;
              p.fifo_links = text == "1";
              return true;
            }},
      Number("gap_min_us", &SwarmParams::gap_min_us),
      Number("gap_max_us", &SwarmParams::gap_max_us),
      Number("length_min_us", &SwarmParams::length_min_us),
      Number("length_max_us", &SwarmParams::length_max_us),
      Number("loss_max_per_million", &SwarmParams::loss_max_per_million),
      Number("loss_baseline_per_million", &SwarmParams::loss_baseline_per_million),
      Number("duplicate_max_per_million", &SwarmParams::duplicate_max_per_million),
      Number("disk_error_max_per_million", &SwarmParams::disk_error_max_per_million),
      Number("drift_ppm_max", &SwarmParams::drift_ppm_max),
      Number("w_crash", &SwarmParams::w_crash),
      Number("w_pause", &SwarmParams::w_pause),
      Number("w_partition", &SwarmParams::w_partition),
      Number("w_one_way", &SwarmParams::w_one_way),
      Number("w_isolate", &SwarmParams::w_isolate),
      Number("w_bridge", &SwarmParams::w_bridge),
      Number("w_swizzle", &SwarmParams::w_swizzle),
      Number("w_clock", &SwarmParams::w_clock),
      Number("w_loss", &SwarmParams::w_loss),
      Number("w_duplicate", &SwarmParams::w_duplicate),
      Number("w_disk", &SwarmParams::w_disk),
      Number("w_membership", &SwarmParams::w_membership),
      Field{"workload",
            [](const SwarmParams& p) { return std::string(WorkloadKindName(p.workload)); },
            [](absl::string_view text, SwarmParams& p) {
              absl::StatusOr<WorkloadKind> kind = ParseWorkloadKind(text);
              if (!kind.ok()) return false;
              p.workload = *kind;
              return true;
            }},
      Number("clients", &SwarmParams::clients),
      Number("keys", &SwarmParams::keys),
  };
  return *fields;
}

}  // namespace

absl::Status SwarmParams::Validate() const {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("swarm params: ", what));
  };
  if (nodes < 1 || nodes > kSwarmVotersMax) {
    return bad(absl::StrCat("nodes=", nodes, " not in [1, ", kSwarmVotersMax, "]"));
  }
  if (spares < 0 || nodes + spares > kSwarmNodesMax) {
    return bad(absl::StrCat("spares=", spares, " not in [0, ", kSwarmNodesMax - nodes, "]"));
  }
  if (heartbeat_ticks < 1 || election_ticks <= heartbeat_ticks ||
      election_ticks > kElectionTicksMax) {
    return bad(absl::StrCat("want 1 <= heartbeat_ticks (", heartbeat_ticks,
                            ") < election_ticks (", election_ticks, ") <= ",
                            kElectionTicksMax));
  }
  if (max_size_per_msg < 1 || max_size_per_msg > kMaxSizePerMsgMax) {
    return bad(absl::StrCat("max_size_per_msg=", max_size_per_msg, " not in [1, ",
                            kMaxSizePerMsgMax, "]"));
  }
  if (max_inflight_msgs < 1 || max_inflight_msgs > raft::kInflightMsgsMax) {
    return bad(absl::StrCat("max_inflight_msgs=", max_inflight_msgs, " not in [1, ",
                            raft::kInflightMsgsMax, "]"));
  }
  if (snapshot_chunk_bytes < 1 || snapshot_chunk_bytes > host::kSnapshotChunkBytesMax) {
    return bad(absl::StrCat("snapshot_chunk_bytes=", snapshot_chunk_bytes, " not in [1, ",
                            host::kSnapshotChunkBytesMax, "]"));
  }
  if (loss_baseline_per_million > loss_max_per_million) {
    return bad("loss_baseline_per_million above loss_max_per_million");
  }
  if (clients < 1 || clients > kClientsMax) {
    return bad(absl::StrCat("clients=", clients, " not in [1, ", kClientsMax, "]"));
  }
  if (keys < 1 || keys > kKeysMax) {
    return bad(absl::StrCat("keys=", keys, " not in [1, ", kKeysMax, "]"));
  }
  for (uint64_t w : {w_crash, w_pause, w_partition, w_one_way, w_isolate, w_bridge,
                     w_swizzle, w_clock, w_loss, w_duplicate, w_disk, w_membership}) {
    if (w > kWeightMax) return bad(absl::StrCat("a weight above ", kWeightMax));
  }
  if (absl::Status s = NetworkOptions().Validate(); !s.ok()) return bad(s.message());
  if (absl::Status s = Mix().Validate(); !s.ok()) return bad(s.message());
  return absl::OkStatus();
}

std::string SwarmParams::ToText() const {
  std::string out;
  for (const Field& f : Fields()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", f.name, "=", f.print(*this));
  }
  return out;
}

absl::StatusOr<SwarmParams> SwarmParams::Parse(absl::string_view text) {
  SwarmParams p;
  std::set<std::string> seen;
  for (absl::string_view token :
       absl::StrSplit(absl::StripAsciiWhitespace(text), ' ', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(token, absl::MaxSplits('=', 1));
    const std::vector<Field>& fields = Fields();
    auto it = std::find_if(fields.begin(), fields.end(),
                           [&](const Field& f) { return kv.first == f.name; });
    if (it == fields.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("swarm params: unknown key \"", kv.first, "\""));
    }
    if (!seen.insert(std::string(kv.first)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("swarm params: key \"", kv.first, "\" given twice"));
    }
    if (!it->parse(kv.second, p)) {
      return absl::InvalidArgumentError(
          absl::StrCat("swarm params: bad value \"", kv.second, "\" for ", kv.first));
    }
  }
  for (const Field& f : Fields()) {
    if (seen.count(f.name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("swarm params: missing key \"", f.name, "\""));
    }
  }
  if (absl::Status s = p.Validate(); !s.ok()) return s;
  return p;
}

FaultMix SwarmParams::Mix() const {
  FaultMix m;
  m.gap_min_us = gap_min_us;
  m.gap_max_us = gap_max_us;
  m.length_min_us = length_min_us;
  m.length_max_us = length_max_us;
  m.drift_ppm_max = drift_ppm_max;
  m.loss_per_million_max = loss_max_per_million;
  m.duplicate_per_million_max = duplicate_max_per_million;
  m.loss_baseline_per_million = static_cast<int64_t>(loss_baseline_per_million);
  m.disk_error_per_million_max = disk_error_max_per_million;
  m.crash = w_crash;
  m.pause = w_pause;
  m.partition = w_partition;
  m.one_way = w_one_way;
  m.isolate = w_isolate;
  m.bridge = w_bridge;
  m.swizzle = w_swizzle;
  m.drift = w_clock;
  m.jump = w_clock;
  m.loss = w_loss;
  m.duplicate = w_duplicate;
  m.disk_write = w_disk;
  m.disk_read = w_disk;
  m.membership = w_membership;
  return m;
}

SimNetworkOptions SwarmParams::NetworkOptions() const {
  SimNetworkOptions o;
  o.latency_min_us = latency_min_us;
  o.latency_max_us = latency_typical_us;
  o.tail_per_million = tail_per_million;
  o.tail_multiplier_min = std::min<uint64_t>(2, tail_multiplier_max);
  o.tail_multiplier_max = tail_multiplier_max;
  o.fifo_links = fifo_links;
  return o;
}

WorkloadOptions SwarmParams::ClientOptions() const {
  WorkloadOptions o;
  o.kind = workload;
  o.clients = clients;
  o.keys = keys;
  return o;
}

bool operator==(const SwarmParams& a, const SwarmParams& b) { return a.ToText() == b.ToText(); }

Rng SwarmStream(uint64_t seed) { return Rng(seed).Fork("swarm"); }

SwarmParams DrawSwarmParams(Rng rng) {
  // Every draw happens whatever the earlier ones returned (fix-ups come
  // after), so one field's range can change without shifting the others.
  SwarmParams p;
  p.nodes = static_cast<int>(rng.Range(1, kSwarmVotersMax));
  const uint64_t spares_roll = rng.Uniform(4);
  p.spares = static_cast<int>(
      std::min<uint64_t>(spares_roll, static_cast<uint64_t>(kSwarmNodesMax - p.nodes)));
  p.election_ticks = static_cast<int>(rng.Range(5, 30));
  p.heartbeat_ticks =
      static_cast<int>(rng.Range(1, static_cast<uint64_t>(p.election_ticks / 3)));
  p.max_size_per_msg = uint64_t{1} << rng.Range(8, 20);
  p.max_inflight_msgs = uint64_t{1} << rng.Range(0, 8);
  p.latency_min_us = static_cast<int64_t>(rng.Range(50, 2'000));
  p.latency_typical_us = p.latency_min_us + static_cast<int64_t>(rng.Range(0, 20'000));
  p.tail_per_million = rng.Range(0, 50'000);
  p.tail_multiplier_max = rng.Range(2, 100);
  p.fifo_links = rng.Chance(1, 4);
  p.gap_max_us = static_cast<int64_t>(rng.Range(500'000, 8'000'000));
  p.gap_min_us = static_cast<int64_t>(rng.Range(100'000, static_cast<uint64_t>(p.gap_max_us)));
  p.length_min_us = static_cast<int64_t>(rng.Range(100'000, 1'000'000));
  p.length_max_us =
      static_cast<int64_t>(rng.Range(static_cast<uint64_t>(p.length_min_us), 10'000'000));
  const bool lossless = rng.Chance(1, 4);
  const uint64_t loss_max = rng.Range(1'000, 300'000);
  p.loss_max_per_million = lossless ? 0 : loss_max;
  const bool baseline = rng.Chance(1, 3);
  const uint64_t baseline_rate = rng.Range(0, 30'000);
  p.loss_baseline_per_million =
      baseline ? std::min(baseline_rate, p.loss_max_per_million) : 0;
  const bool no_duplicates = rng.Chance(1, 4);
  const uint64_t duplicate_max = rng.Range(1'000, 500'000);
  p.duplicate_max_per_million = no_duplicates ? 0 : duplicate_max;
  p.disk_error_max_per_million = rng.Range(1'000, 200'000);
  p.drift_ppm_max = static_cast<int64_t>(rng.Range(0, static_cast<uint64_t>(SimClock::kDriftPpmMax)));
  for (uint64_t* w : {&p.w_crash, &p.w_pause, &p.w_partition, &p.w_one_way, &p.w_isolate,
                      &p.w_bridge, &p.w_swizzle, &p.w_clock, &p.w_loss, &p.w_duplicate,
                      &p.w_disk, &p.w_membership}) {
    *w = rng.Range(0, 4);
  }
  // Episodes need a rate to draw from.
  if (p.loss_max_per_million == 0) p.w_loss = 0;
  if (p.duplicate_max_per_million == 0) p.w_duplicate = 0;
  // At least one kind of episode.
  const uint64_t total = p.w_crash + p.w_pause + p.w_partition + p.w_one_way + p.w_isolate +
                         p.w_bridge + p.w_swizzle + p.w_clock + p.w_loss + p.w_duplicate +
                         p.w_disk + p.w_membership;
  if (total == 0) p.w_crash = 1;
  // kv_reads (mostly reads): clients that keep reading from a deposed
  // leader are what expose a read served without ReadIndex.
  constexpr WorkloadKind kWorkloads[] = {WorkloadKind::kKv, WorkloadKind::kCluster,
                                         WorkloadKind::kMixed, WorkloadKind::kKvReads};
  p.workload = kWorkloads[rng.Uniform(4)];
  p.clients = static_cast<int>(rng.Range(1, 6));
  p.keys = static_cast<int>(rng.Range(1, 8));
  p.snapshot_chunk_bytes = uint64_t{1} << rng.Range(6, 20);  // 64 B .. 1 MiB
  CHECK_OK(p.Validate()) << p.ToText();
  return p;
}

}  // namespace blixard::sim
