// KvLoad: KV puts or gets against one node's client port from many client
// connections, all on one EventLoop on the calling thread (no threads), for
// `blixard bench put|get` and `blixard check perf`. A thousand connections
// cost a thousand fds and one core at most, so the load generator does not
// take the cores the cluster under test needs.
//
// Each of `clients` connections is its own client session (its own
// request_id.client_id) with at most one request in flight. Two modes:
//   - closed loop (rate_per_second = 0): every client sends its next
//     request as soon as its reply comes, until `ops` requests were sent or
//     `duration_us` has passed;
//   - paced (rate_per_second > 0), the generator of `etcdctl check perf`:
//     requests are made at the rate by a token bucket (token_bucket.h) and
//     handed to an idle client, or, all clients busy, queued, at most
//     `clients` of them (etcd's channel of that capacity); with the queue
//     full the generator waits, so a slow cluster is offered less, not an
//     ever-growing queue. Latency runs from when a client sends the request,
//     not from when it was made (as etcd measures it). After duration_us no
//     request is made; the queue drains and the run ends when every reply
//     is in.
// Every put is durable (committed and applied on a majority's fsync'd
// stores) before its reply; every get is linearizable (ReadIndex).
//
// Keys:
//   - kIndexed: key i is IndexedKey(i, key_bytes). Puts write keys 0, 1, 2,
//     ... in the order they are sent (every put a new key); gets read keys
//     drawn uniformly from [0, key_space), e.g. those a put run of key_space
//     ops and the same key_bytes wrote.
//   - kRandom: each put a new key "check-perf/" followed by random
//     characters up to key_bytes (etcd's check perf: random keys, never
//     written before with overwhelming probability). Puts only.
// Values are value_bytes zero bytes, as etcd's check perf writes.
//
// A reply that is not a success (a put not applied OK, a get that found
// nothing, with `forward` a NOT_LEADER) counts as failed under its error
// text (etcd's error table); the run goes on. A broken connection, a
// NOT_LEADER answer without `forward`, or the run outliving timeout_us ends
// the run with an error.
//
// Thread: the caller's, blocking until the run ends.
#ifndef BLIXARD_NET_API_KV_LOAD_H_
#define BLIXARD_NET_API_KV_LOAD_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/env.h"
#include "net/loop/event_loop.h"
#include "net/transport/socket.h"

namespace blixard::net {

struct KvLoadOptions {
  static constexpr int kClientsMax = 4096;
  static constexpr size_t kKeyBytesMin = 16;

  enum class Op { kPut, kGet };
  enum class Keys { kIndexed, kRandom };

  SocketAddress endpoint;  // the leader's client address (followers refuse)
  Op op = Op::kPut;
  int clients = 1;                // 1..kClientsMax
  uint64_t ops = 0;               // requests in all; 0: no limit
  int64_t duration_us = 0;        // make no request after this; 0: no limit
  uint64_t rate_per_second = 0;   // 0: closed loop; else paced, at most
                                  // TokenBucket::kRatePerSecondMax
  Keys keys = Keys::kIndexed;
  uint64_t key_space = 0;         // gets: read keys [0, key_space); >= 1
  size_t key_bytes = 16;          // kKeyBytesMin..kKvKeyBytesMax
  size_t value_bytes = 256;       // puts: 0..kKvValueBytesMax
  // Every connection must be up within this; the run's clock starts when
  // they are.
  int64_t connect_timeout_us = 30 * kMicrosPerSecond;
  int64_t timeout_us = 3600 * kMicrosPerSecond;  // the run, after connecting
  uint64_t seed = 1;                              // random keys, client ids
  // Sets allow_forward on every request, so a leader that steps down during
  // the run forwards to its successor, and a NOT_LEADER answer (no leader
  // known, mid-election) counts as a failed request instead of ending the
  // run: what an etcd client sees (its followers forward too, and its
  // check perf counts failures in its error table).
  bool forward = false;
  // The loop to run on, or null for one of its own (tests serve fake nodes
  // on the loop they pass). REQUIRES: the calling thread's loop.
  EventLoop* loop = nullptr;

  // INVALID_ARGUMENT naming the first bad field. At least one of ops and
  // duration_us must bound the run; kRandom keys only for puts.
  absl::Status Validate() const;
};

struct KvLoadResult {
  uint64_t sent = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;  // answered, but not a success
  // Error text -> how many requests failed with it.
  std::map<std::string, uint64_t> errors;
  // From when every client was connected to the last reply.
  int64_t elapsed_us = 0;
  std::vector<int64_t> latencies_us;  // of every success, ascending
};

// Key i of the indexed scheme: "k" and i in 15 decimal digits, then '.' up
// to key_bytes. REQUIRES: key_bytes >= 16; i < 10^15.
std::string IndexedKey(uint64_t index, size_t key_bytes);

// Runs the load. Errors: INVALID_ARGUMENT (Validate); UNAVAILABLE when a
// connection cannot be made or breaks, or the endpoint is not the leader
// (naming it); DEADLINE_EXCEEDED when connecting outlives
// connect_timeout_us or the run timeout_us; RESOURCE_EXHAUSTED when the
// process may not open a socket per client (RLIMIT_NOFILE, raised to its
// hard limit first when that is enough).
absl::StatusOr<KvLoadResult> RunKvLoad(const KvLoadOptions& options);

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_KV_LOAD_H_
