// `blixard bench put|get`: unthrottled, closed-loop KV load against a
// running cluster's leader (found through --endpoints), reporting
// throughput, the slowest request, the standard deviation and the
// 50/90/99/99.9th percentile latencies, as a table or JSON. All clients run
// on one thread (net/api/kv_load.h).
//
//   bench put: --ops durable puts from --clients clients, each a new key:
//              the i-th put sent writes IndexedKey(i, --key_size)
//              ("k000000000000042" padded with '.').
//   bench get: --ops linearizable gets of keys drawn uniformly from the
//              first --keys keys of that scheme. With --fill (the default)
//              it writes those keys first (--value_size each; reported on
//              a line of its own, not in the figures); --fill=false reads
//              what a prior `bench put --ops>=KEYS` with the same
//              --key_size wrote (a key not there counts as failed).
//
// Exit codes: 0 every request succeeded; 1 some failed; 2 usage; 3 no
// leader or a connection broke. Also the helper `check perf` shares.
#ifndef BLIXARD_CLI_BENCH_COMMAND_H_
#define BLIXARD_CLI_BENCH_COMMAND_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "net/api/client.h"
#include "net/transport/socket.h"

namespace blixard::cli {

const Command& BenchCommand();

// The client address of the endpoint whose node says it leads, waiting out
// an election for up to `timeout` (a cluster just started has no leader
// yet). Errors: UNAVAILABLE / DEADLINE_EXCEEDED when no endpoint answers or
// none leads in time.
absl::StatusOr<net::SocketAddress> WaitForLeader(net::Client& client, absl::Duration timeout);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_BENCH_COMMAND_H_
