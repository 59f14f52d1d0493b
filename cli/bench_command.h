// `blixard bench put`: unthrottled, closed-loop durable KV writes against a
// running cluster (the leader is found through --endpoints), reporting
// throughput, the slowest request, the standard deviation and the
// 50/90/99/99.9th percentile latencies, as a table or JSON.
#ifndef BLIXARD_CLI_BENCH_COMMAND_H_
#define BLIXARD_CLI_BENCH_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

const Command& BenchCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_BENCH_COMMAND_H_
