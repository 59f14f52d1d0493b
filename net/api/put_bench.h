// PutBench: closed-loop KV write load on one node's client port, the
// original interface of `blixard bench put`, kept for the tests that load a
// cluster with it (net/node). It is RunKvLoad (kv_load.h) with puts,
// indexed keys and no pacing: `clients` connections, each its own client
// session, each keep one put in flight until `ops` puts were answered.
// Every put is durable before its reply. Everything runs on one EventLoop
// on the calling thread (no threads).
//
// Thread: the caller's, blocking until the run ends.
#ifndef BLIXARD_NET_API_PUT_BENCH_H_
#define BLIXARD_NET_API_PUT_BENCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/env.h"
#include "net/api/load_stats.h"  // Percentile, for this API's users
#include "net/transport/socket.h"

namespace blixard::net {

struct PutBenchOptions {
  SocketAddress endpoint;  // the leader's client address (followers refuse)
  int clients = 1;         // 1..4096
  uint64_t ops = 1000;     // >= clients
  size_t key_bytes = 16;    // 16..1024: IndexedKey(i) for the i-th put sent
  size_t value_bytes = 256;  // 0..64 KiB (the state machine's limit)
  int64_t timeout_us = 300 * kMicrosPerSecond;  // the whole run
  uint64_t seed = 1;        // client ids
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

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_PUT_BENCH_H_
