// Workload clients: simulated users that drive a cluster through the Host's
// client API the way real clients do, over a network with latency, with
// request ids, retries on timeout, redirects to the leader, and an honest
// account of what they know: an operation is ok, definitely failed, or
// unknown (it may or may not have taken effect).
//
// KV operations are recorded as a history for the linearizability checker.
// Values are unique per write ("c<client>-<seq>"), so a key's version (the
// log index of its last write) and its value determine each other, and a
// compare-and-swap on a version can be checked as one on a value.
//
// Cluster operations exercise the scheduler: tasks with resource needs and
// features, VM lifecycles, worker drains, summary reads.
//
// Deterministic: every choice comes from the client's own Rng stream; all
// timing is World events owned by the world (requests are owned by their
// target node, so a paused node holds them and a crashed one loses them).
#ifndef BLIXARD_SIM_WORKLOAD_H_
#define BLIXARD_SIM_WORKLOAD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/rng.h"
#include "core/base/types.h"
#include "core/host/host.h"
#include "core/proto/api.pb.h"
#include "core/proto/host.pb.h"
#include "sim/checker/linearizability.h"
#include "sim/world.h"

namespace blixard::sim {

// kKvReads: KV only, nine reads in ten (readers that keep reading from the
// node they believe leads: what exposes a stale read path).
enum class WorkloadKind { kKv, kCluster, kMixed, kKvReads };
// "kv", "cluster", "mixed", "kv_reads"; INVALID_ARGUMENT otherwise.
absl::StatusOr<WorkloadKind> ParseWorkloadKind(absl::string_view name);
absl::string_view WorkloadKindName(WorkloadKind kind);

// One client operation as a client invoked it: when, by whom, what. A run's
// operations are recorded (Workload::recorded()) and can be given back
// (WorkloadOptions::ops) so a failing run can be replayed and shrunk without
// the workload's random choices; how each operation is carried out (targets,
// latencies, retries, redirects, timeouts) stays the workload's own
// behaviour.
//
// Text form, one operation per line (the counterpart of a Fault line):
//
//   <at_us> <name> client=<id> id=<n> [seq=<s>] [forward=1] rng=<draws> <args>
//   1520311 put client=1000 id=3 seq=2 forward=1 rng=41 kv_put { key: "k1" value: "c1000-2" }
//   1604005 get client=1001 id=7 rng=88 kv_get: "k3"
//
// <name> is the operation's name in traces; <args> is the request's
// Command (without its request id) or Query in protobuf text format, on one
// line; seq is the write's request sequence; rng is the position of the
// client's random stream when it invoked the operation (Rng::draws()), so a
// replay carries the operation out with the same random numbers as the
// recorded run, whichever other operations a shrinker dropped. A
// compare-and-swap is recorded without its expected version: the client
// binds it when it issues the operation, from the last version it read (or
// "absent"), as the drawing workload does, so the history stays checkable.
struct ClientOp {
  SimMicros at_us = 0;
  uint64_t client = 0;
  uint64_t op_id = 0;      // the client's operation number, from 1
  uint64_t rng_draws = 0;  // Rng::draws() of the client's stream at invoke
  api::ClientRequest request;

  // "put", "get", "delete", "cas", or the Command / Query field name
  // ("submit_task", "summary", ...); "?" for an empty request.
  std::string Name() const;
  // One line of the text form, without '\n'.
  std::string ToText() const;
  // INVALID_ARGUMENT saying what is wrong with the line (no line number:
  // the caller knows it).
  static absl::StatusOr<ClientOp> Parse(absl::string_view line);
  friend bool operator==(const ClientOp& a, const ClientOp& b);
};

// INVALID_ARGUMENT when times decrease, a client's operation ids do not
// increase, a client id is outside [client_id_base, client_id_base +
// clients), or a request is empty. Names the offending operation.
absl::Status ValidateClientOps(const std::vector<ClientOp>& ops, uint64_t client_id_base,
                               int clients);

struct WorkloadOptions {
  WorkloadKind kind = WorkloadKind::kMixed;
  int clients = 3;
  int keys = 4;                 // KV keyspace: small, for contention
  int64_t think_us_max = 200'000;  // pause between a client's operations
  int64_t latency_us_min = 200;    // client <-> node, each way
  int64_t latency_us_max = 3'000;
  int64_t request_timeout_us = 1'500'000;  // per attempt
  int64_t retry_backoff_us = 50'000;
  int64_t op_deadline_us = 20'000'000;     // give up (unknown or fail) after this
  uint64_t client_id_base = 1'000;
  // Operations to issue instead of drawing them (replay, shrinking): each
  // client issues its own, in list order, each at its time or when the
  // client's previous operation ends, whichever is later. An empty list
  // means no operations at all. REQUIRES: ValidateClientOps(*ops, ...).
  std::optional<std::vector<ClientOp>> ops;
};

// How clients reach nodes. `HostFor` returns the live Host of a node, or
// nullptr while it is crashed (its requests are lost).
class ClusterAccess {
 public:
  virtual ~ClusterAccess() = default;
  virtual host::Host* HostFor(NodeId node) = 0;
  virtual std::vector<NodeId> Nodes() const = 0;
  // The highest log index any node knows committed now (0: unknown). Reads
  // must be served from state at least this far (see stale_read()).
  virtual uint64_t KnownCommittedIndex() const { return 0; }
};

// What the clients report as they go (for the trace and the summary).
class WorkloadListener {
 public:
  virtual ~WorkloadListener() = default;
  // `fields` are extra (name, value) pairs describing the operation.
  virtual void OnInvoke(uint64_t client, uint64_t op_id, absl::string_view op,
                        const std::vector<std::pair<std::string, std::string>>& fields) = 0;
  // status: "ok", "fail" or "unknown"; `value` what a read returned.
  virtual void OnComplete(uint64_t client, uint64_t op_id, absl::string_view status,
                          absl::string_view value) = 0;
};

struct WorkloadCounts {
  uint64_t invoked = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t unknown = 0;
  uint64_t attempts = 0;
  uint64_t redirects = 0;
  uint64_t timeouts = 0;
};

class Workload {
 public:
  Workload(World* world, ClusterAccess* cluster, WorkloadListener* listener,
           WorkloadOptions options);
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // Starts every client; each issues operations until Stop().
  void Start();
  // No new operations; those in flight run to completion or their deadline.
  void Stop();
  bool idle() const;  // stopped and nothing in flight
  // Ends every operation still in flight the way a client that gives up
  // does: a write as unknown (it may have taken effect), a read as failed
  // (it changed nothing). REQUIRES: stopped.
  void Abandon();

  const std::vector<KvOperation>& kv_history() const { return history_; }
  // The first successful read (KV get or cluster query) answered from state
  // older than what was committed when it was invoked: its index is below
  // an entry some node already knew committed, or a write some client saw
  // acknowledged. ReadIndex (Raft thesis 6.4) promises reads at least that
  // fresh: the read index is the leader's commit index once it has
  // confirmed, with a quorum, that it still leads. This is stronger than the
  // per-key history check, which sees a stale read only when a completed
  // write to the same key shows it.
  const std::optional<std::string>& stale_read() const { return stale_read_; }
  const WorkloadCounts& counts() const { return counts_; }
  // Every operation invoked so far, in invoke order (drawn or given).
  const std::vector<ClientOp>& recorded() const { return recorded_; }
  // Operations in flight, described for a liveness failure report.
  std::vector<std::string> InFlight() const;

 private:
  class Client;
  friend class Client;

  World* world_;
  ClusterAccess* cluster_;
  WorkloadListener* listener_;
  WorkloadOptions options_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<KvOperation> history_;
  std::vector<ClientOp> recorded_;
  WorkloadCounts counts_;
  bool stopped_ = false;
  // Highest log index of a write some client saw acknowledged so far.
  uint64_t acked_write_index_max_ = 0;
  std::optional<std::string> stale_read_;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_WORKLOAD_H_
