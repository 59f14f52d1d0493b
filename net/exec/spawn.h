// SpawnSession: how the executor starts every task and VM wrapper — in a
// session of its own (its own process group, away from the node's
// terminal and signals), with a clean signal mask and default
// dispositions (the node blocks SIGTERM/SIGINT for its signalfd and may
// ignore SIGPIPE; both would be inherited through exec), stdin from
// /dev/null, stdout and stderr appended to `output` (created, truncated),
// no fd of the node's (sockets, the store, pidfds; even one opened without
// O_CLOEXEC), in working directory `dir`, with exactly `env`.
#ifndef BLIXARD_NET_EXEC_SPAWN_H_
#define BLIXARD_NET_EXEC_SPAWN_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blixard::net {

// The pid of the new process (its session and group leader). Errors: the
// ErrnoStatus of open (naming the file) or posix_spawn (naming `program`
// and `what`, e.g. "task t1"); nothing runs then.
absl::StatusOr<pid_t> SpawnSession(const std::string& program, std::vector<std::string> argv,
                                   std::vector<std::string> env, const std::string& output,
                                   const std::string& dir, absl::string_view what);

}  // namespace blixard::net

#endif  // BLIXARD_NET_EXEC_SPAWN_H_
