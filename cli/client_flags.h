// What every client command (`kv`, `cluster`, `bench`) shares: the
// endpoints (--endpoints, or BLIXARD_ENDPOINTS), the call timeout, the
// output format, the exit codes of client commands, and making a Client.
//
// Exit codes of client commands: 0 ok; 1 the cluster refused or failed the
// operation (e.g. a CAS mismatch, a missing key); 2 usage; 3 unavailable or
// timed out (no endpoint answered in time: the operation may or may not
// have been applied, for a write).
#ifndef BLIXARD_CLI_CLIENT_FLAGS_H_
#define BLIXARD_CLI_CLIENT_FLAGS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/command.h"
#include "net/api/client.h"

namespace blixard::cli {

inline constexpr int kExitUnavailable = 3;

// The flags every client command binds (one shared absl flag each).
CommandFlag EndpointsFlag();
CommandFlag TimeoutFlag();
CommandFlag OutputFlag();

enum class Output { kTable, kJson };

// The client for the bound flags, or a usage error to print (exit 2).
absl::StatusOr<std::unique_ptr<net::Client>> MakeClient();
absl::StatusOr<Output> OutputFormat();

// The exit code for a call's error (3 for UNAVAILABLE and
// DEADLINE_EXCEEDED, 1 otherwise), after printing it to stderr as
// "blixard <command>: <error>".
int ReportCallError(const std::string& command, const absl::Status& status);

// JSON string literal for `text` (quotes, backslashes, control bytes and
// non-UTF-8 bytes escaped).
std::string JsonString(absl::string_view text);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_CLIENT_FLAGS_H_
