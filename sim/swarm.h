// Swarm mode (`blixard sim --faults=swarm`): instead of one fixed fault
// profile, every seed draws its own world — cluster size, Raft timing and
// batching, network latency and loss, which faults happen and how often,
// membership changes, and the client workload — so a sweep of seeds covers
// configurations nobody thought to write down (swarm testing: Groce et al.,
// "Swarm Testing", ISSTA 2012; FoundationDB's buggify).
//
// SwarmParams is the whole draw as plain integers. It has a one-line text
// form (`nodes=3 spares=2 election_ticks=12 ...`) that parses back to the
// same value, so a run can be printed, stored next to a shrunk schedule and
// replayed without the seed.
//
//   SwarmParams params = DrawSwarmParams(SwarmStream(seed));
//   std::string line = params.ToText();
//   absl::StatusOr<SwarmParams> again = SwarmParams::Parse(line);  // == params
//
// Deterministic: drawn from the seed's own "swarm" stream with integer
// arithmetic only; adding draws here never shifts any other stream.
#ifndef BLIXARD_SIM_SWARM_H_
#define BLIXARD_SIM_SWARM_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/rng.h"
#include "sim/fault_schedule.h"
#include "sim/sim_network.h"
#include "sim/workload.h"

namespace blixard::sim {

// Node ids 1..kSwarmNodesMax exist at most (initial voters plus spares);
// equal to the simulator's kSimNodesMax (static_assert in simulation.cc).
inline constexpr int kSwarmNodesMax = 9;
inline constexpr int kSwarmVotersMax = 7;

struct SwarmParams {
  // Cluster: `nodes` initial voters (ids 1..nodes) and `spares` more node
  // ids (nodes+1..nodes+spares) that start empty, outside the cluster, for
  // membership changes to add.
  int nodes = 3;
  int spares = 0;

  // Raft (HostOptions).
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  uint64_t max_size_per_msg = 1 << 20;
  uint64_t max_inflight_msgs = 256;
  // Snapshot streams (HostOptions::snapshot_chunk_bytes): small chunks make
  // every snapshot a long stream, with lost and resent chunks.
  uint64_t snapshot_chunk_bytes = 4096;

  // Network (SimNetworkOptions): latency is uniform in
  // [latency_min_us, latency_typical_us], and tail_per_million of the
  // packets take up to tail_multiplier_max times that.
  int64_t latency_min_us = 100;
  int64_t latency_typical_us = 2'000;
  uint64_t tail_per_million = 10'000;
  uint64_t tail_multiplier_max = 100;
  bool fifo_links = false;

  // Fault rates: episodes start every [gap_min_us, gap_max_us] and last
  // [length_min_us, length_max_us]; the weights pick the kind (see
  // FaultMix). Crashed nodes restart, paused ones resume, at the episode's
  // end.
  int64_t gap_min_us = 2'000'000;
  int64_t gap_max_us = 8'000'000;
  int64_t length_min_us = 500'000;
  int64_t length_max_us = 5'000'000;
  uint64_t loss_max_per_million = 100'000;        // 0..300'000
  uint64_t loss_baseline_per_million = 0;         // <= loss_max
  uint64_t duplicate_max_per_million = 100'000;   // 0..500'000
  uint64_t disk_error_max_per_million = 100'000;  // 1'000..200'000
  int64_t drift_ppm_max = 1000;
  uint64_t w_crash = 0;
  uint64_t w_pause = 0;
  uint64_t w_partition = 0;  // symmetric
  uint64_t w_one_way = 0;
  uint64_t w_isolate = 0;
  uint64_t w_bridge = 0;
  uint64_t w_swizzle = 0;
  uint64_t w_clock = 0;  // drift and jumps
  uint64_t w_loss = 0;
  uint64_t w_duplicate = 0;
  uint64_t w_disk = 0;  // write and read errors
  uint64_t w_membership = 0;

  // Workload.
  WorkloadKind workload = WorkloadKind::kMixed;
  int clients = 3;
  int keys = 4;

  // INVALID_ARGUMENT naming the first field out of range.
  absl::Status Validate() const;

  // One line, "key=value" pairs separated by single spaces, every field,
  // in declaration order; no newline.
  std::string ToText() const;
  // The inverse of ToText: every field exactly once, any order.
  // INVALID_ARGUMENT naming the bad, unknown, repeated or missing key, or
  // the failed Validate().
  static absl::StatusOr<SwarmParams> Parse(absl::string_view text);

  // What the simulator builds from the params.
  FaultMix Mix() const;
  SimNetworkOptions NetworkOptions() const;
  WorkloadOptions ClientOptions() const;

  friend bool operator==(const SwarmParams& a, const SwarmParams& b);
  friend bool operator!=(const SwarmParams& a, const SwarmParams& b) { return !(a == b); }
};

// The seed's dedicated swarm stream: Rng(seed).Fork("swarm"), the same as
// World(seed).Stream("swarm").
Rng SwarmStream(uint64_t seed);

// A random, valid SwarmParams. Always draws the same count of numbers in
// the same order, so the draw depends on nothing but the stream.
SwarmParams DrawSwarmParams(Rng rng);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SWARM_H_
