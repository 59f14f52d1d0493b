// KvHistory: the client history of a real run (invocations and outcomes of
// KV operations, and the faults applied), written in the simulator's trace
// format (sim/TRACE.md: `header`, `invoke`, `complete`, `fault`, `result`
// lines), so a real run can be read by the same tools as a simulated one.
//
// Checks: CheckLinearizable below runs the simulator's linearizability
// checker (sim/checker) on a real history, so real and simulated runs are
// judged by the same oracle.
//
// Thread-safe: client threads record concurrently (one mutex).
#ifndef BLIXARD_NET_TESTING_KV_HISTORY_H_
#define BLIXARD_NET_TESTING_KV_HISTORY_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "storage/mutex.h"

namespace blixard::net::testing {

struct HistoryOp {
  enum class Status { kPending, kOk, kFail, kUnknown };
  uint64_t op_id = 0;
  uint64_t client = 0;
  std::string op;  // "put", "get", "cas" (register keys), "add" (set elements)
  std::string key;
  std::string value;                    // put/cas/add: the value written
  std::optional<std::string> expected;  // cas: nullopt = the key must be absent
  int64_t invoke_us = 0;
  int64_t complete_us = -1;  // -1 while pending or unknown
  Status status = Status::kPending;
  std::optional<std::string> read;  // get with kOk: nullopt = absent
};

class KvHistory {
 public:
  explicit KvHistory(std::string header_fields);  // e.g. "\"seed\":7,\"nodes\":3"

  // Microseconds since the history began (steady clock).
  int64_t NowUs() const;
  // Records an invocation; returns its op id.
  uint64_t Invoke(uint64_t client, const std::string& op, const std::string& key,
                  const std::string& value = "",
                  const std::optional<std::string>& expected = std::nullopt);
  // Records the outcome of `op_id`. REQUIRES: pending; status not kPending.
  void Complete(uint64_t op_id, HistoryOp::Status status,
                const std::optional<std::string>& read = std::nullopt);
  // Records a fault line (`fault` name as in sim/TRACE.md).
  void Fault(const std::string& fault, const std::vector<int>& nodes,
             const std::vector<int>& others = {}, int64_t value = 0);

  std::vector<HistoryOp> ops() const;
  // The trace (JSON lines) with a result line saying `status`.
  std::string ToTrace(const std::string& status) const;
  absl::Status WriteTrace(const std::string& path, const std::string& status) const;

 private:
  const std::string header_fields_;
  const std::chrono::steady_clock::time_point start_;
  mutable Mutex mu_;
  std::vector<HistoryOp> ops_ ABSL_GUARDED_BY(mu_);
  // Lines in the order things happened (invoke, complete, fault).
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// The simulator's linearizability checker (sim/checker/linearizability.h)
// over every "put"/"get"/"cas" operation, converted one to one (an unknown
// outcome never completes). OK, or FAILED_PRECONDITION with the checker's
// verdict and detail (an inconclusive search fails too).
absl::Status CheckLinearizable(const std::vector<HistoryOp>& ops);

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_TESTING_KV_HISTORY_H_
