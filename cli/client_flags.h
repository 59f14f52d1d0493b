// What every client command (`kv`, `cluster`, `bench`, `member`, `task`,
// `worker`) shares: the endpoints (--endpoints, or BLIXARD_ENDPOINTS), the
// call timeout, the output format, the exit codes of client commands,
// making a Client, and reporting what a call came to.
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
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"
#include "google/protobuf/message.h"
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

// Calls `request` and returns the response when its status is OK. A
// response the node REJECTED becomes FAILED_PRECONDITION "refused: <its
// error>" (ReportCallError then exits 1); the client's own errors pass
// through (UNAVAILABLE, DEADLINE_EXCEEDED: exit 3). The state machine's
// answer inside an OK response (Result, QueryResult) is the caller's to
// check.
absl::StatusOr<api::ClientResponse> CallOk(net::Client& client, api::ClientRequest request);

// The state machine's refusal of a command or query (a Result or
// QueryResult whose code is not RESULT_OK) as a FAILED_PRECONDITION whose
// message is "<CODE>: <message>", CODE as ResultCode names it (e.g.
// "RESULT_NOT_FOUND: task 'x' does not exist").
absl::Status Refusal(cluster::ResultCode code, absl::string_view message);

// A query, or a write, whose state-machine answer is RESULT_OK: that
// answer; else CallOk's errors or the Refusal.
absl::StatusOr<cluster::QueryResult> QueryOk(net::Client& client, cluster::Query query);
absl::StatusOr<cluster::Result> WriteOk(net::Client& client, cluster::Command command);

// The exit code for an operation's error, after printing it to stderr:
// UNAVAILABLE and DEADLINE_EXCEEDED as ReportCallError does (exit 3);
// anything else, a refusal above or CallOk's, as "blixard <command>:
// <message>" (exit 1).
int ReportFailure(const std::string& command, const absl::Status& status);

// `message` as one line of JSON in protobuf's canonical mapping, with the
// .proto field names (snake_case) and every scalar field present even when
// zero, so scripts see the same keys whatever the values. As that mapping
// says: 64-bit integers are strings ("7"), enums their value names
// ("TASK_RUNNING"), bytes base64. Unset message fields are left out.
std::string ProtoJson(const google::protobuf::Message& message);

// JSON string literal for `text` (quotes, backslashes, control bytes and
// non-UTF-8 bytes escaped).
std::string JsonString(absl::string_view text);

}  // namespace blixard::cli

#endif  // BLIXARD_CLI_CLIENT_FLAGS_H_
