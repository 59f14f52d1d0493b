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

enum class WorkloadKind { kKv, kCluster, kMixed };
// "kv", "cluster", "mixed"; INVALID_ARGUMENT otherwise.
absl::StatusOr<WorkloadKind> ParseWorkloadKind(absl::string_view name);
absl::string_view WorkloadKindName(WorkloadKind kind);

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
};

// How clients reach nodes. `HostFor` returns the live Host of a node, or
// nullptr while it is crashed (its requests are lost).
class ClusterAccess {
 public:
  virtual ~ClusterAccess() = default;
  virtual host::Host* HostFor(NodeId node) = 0;
  virtual std::vector<NodeId> Nodes() const = 0;
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
  const WorkloadCounts& counts() const { return counts_; }
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
  WorkloadCounts counts_;
  bool stopped_ = false;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_WORKLOAD_H_
