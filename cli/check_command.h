// `blixard check perf --load=s|m|l|xl`: etcd's `etcdctl check perf`
// against a Blixard cluster, with etcd's parameters and verdict
// (net/api/perf_check.h): puts of 256-byte random keys and 1 KiB values at
// a fixed rate from a fixed number of clients for 60 s, then PASS/FAIL
// lines for throughput (> 90% of the rate), the slowest request (<= 0.5 s)
// and the standard deviation (<= 0.1 s), and a last line PASS or FAIL.
// --duration shortens the run (for tests; the verdict is etcd's only at
// 60 s). The load goes to the leader; all clients run on one thread
// (net/api/kv_load.h), so 1,000 clients cost one core at most.
//
// Unlike etcd's, it neither refuses a cluster that already holds keys of
// a previous check nor deletes its keys afterwards: Blixard's KV has no
// prefix scan or range delete. Run it against a cluster you can throw away
// (`blixard dev`), or mind the state it leaves (rate x duration keys of
// about 1.3 KB: 1.2 GB at xl).
//
// Exit codes: 0 PASS; 1 FAIL; 2 usage; 3 no leader, or a connection broke.
#ifndef BLIXARD_CLI_CHECK_COMMAND_H_
#define BLIXARD_CLI_CHECK_COMMAND_H_

#include "cli/command.h"

namespace blixard::cli {

const Command& CheckCommand();

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_CHECK_COMMAND_H_
