// KvWorkload: several clients, each on its own thread with its own Client
// (so its own session), issuing put / get / compare-and-swap on a few
// register keys and set adds (puts of unique keys "set/<client>-<n>"),
// recording every invocation and outcome in a KvHistory. Every written
// value is unique ("c<client>-<n>"), which the history's checks rely on.
//
// Outcomes: an answer is ok or fail (a CAS whose version did not match, a
// REJECTED request); a Client::Call error (no final answer before the call
// deadline) is unknown for a write and dropped for a read (an unanswered
// read constrains nothing).
//
// Test-only. Start/Stop from one thread; the clients run on their own.
#ifndef BLIXARD_NET_TESTING_KV_WORKLOAD_H_
#define BLIXARD_NET_TESTING_KV_WORKLOAD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "net/api/client.h"
#include "net/testing/kv_history.h"

namespace blixard::net::testing {

struct KvWorkloadOptions {
  std::string endpoints;  // "127.0.0.1:P,..."
  int clients = 3;
  int keys = 3;
  uint64_t seed = 1;
  // One Call's deadline: short, so a client under a fault gives up (unknown)
  // and goes on instead of waiting out the whole fault.
  int64_t call_deadline_us = 3 * kMicrosPerSecond;
  int64_t pause_between_ops_us = 5 * kMicrosPerMilli;
};

struct KvWorkloadCounts {
  uint64_t ok = 0;
  uint64_t fail = 0;
  uint64_t unknown = 0;
  uint64_t acked_adds = 0;
};

class KvWorkload {
 public:
  KvWorkload(KvWorkloadOptions options, KvHistory* history);
  ~KvWorkload();  // Stop()

  void Start();
  // Asks every client to finish its current call and joins them (each call
  // ends within call_deadline_us).
  void Stop();

  KvWorkloadCounts Counts() const;

 private:
  void RunClient(int index);

  const KvWorkloadOptions options_;
  KvHistory* const history_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// The final read of the set: every add acknowledged OK must be present.
// Reads each add's key (OK or unknown adds) through `client`; OK, or
// DATA_LOSS naming the first acknowledged add missing (or an error of the
// read). `*unknown_present` counts unknown adds that took effect.
absl::Status CheckSetAdds(Client& client, const std::vector<HistoryOp>& ops,
                          uint64_t* unknown_present);

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_TESTING_KV_WORKLOAD_H_
