// PutBench: closed-loop KV write load on one node's client port, for
// `blixard bench put`. `clients` connections (each its own client session)
// each keep one put in flight: when its reply comes, the next goes, until
// `ops` puts were acknowledged in all. Every put is durable (committed and
// applied on a majority's fsync'd stores) before its reply. Everything runs
// on one EventLoop on the calling thread (no threads).
//
// Thread: the caller's, blocking until the run ends.
#ifndef BLIXARD_NET_API_PUT_BENCH_H_
#define BLIXARD_NET_API_PUT_BENCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/env.h"
#include "net/transport/socket.h"

namespace blixard::net {

struct PutBenchOptions {
  SocketAddress endpoint;  // the leader's client address (followers refuse)
  int clients = 1;         // 1..4096
  uint64_t ops = 1000;     // >= clients
  size_t key_bytes = 16;    // 16..256: "c<client>-<put>", unique, padded
  size_t value_bytes = 256;  // 0..64 KiB (the state machine's limit)
  int64_t timeout_us = 300 * kMicrosPerSecond;  // the whole run
  uint64_t seed = 1;        // value bytes and client ids
};

struct PutBenchResult {
  uint64_t ok = 0;
  uint64_t failed = 0;  // answered, but not applied OK (the first error is kept)
  std::string first_error;
  int64_t elapsed_us = 0;
  std::vector<int64_t> latencies_us;  // of every acknowledged put, sorted
};

// Runs the load. Errors: INVALID_ARGUMENT for bad options; UNAVAILABLE when
// a connection cannot be made or breaks (naming it), or the endpoint is
// not the leader; DEADLINE_EXCEEDED when the run outlives timeout_us.
absl::StatusOr<PutBenchResult> RunPutBench(const PutBenchOptions& options);

// The p-th percentile (0 < p <= 100) of sorted latencies (0 when empty).
int64_t Percentile(const std::vector<int64_t>& sorted, double p);

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_PUT_BENCH_H_
