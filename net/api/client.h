// Client: a synchronous client of the client protocol for the `blixard` CLI
// and for tests (ARCHITECTURE.md, "Production runtime": Clients). It owns
// an EventLoop and runs it, on the calling thread, until a call completes;
// it starts no thread. Between calls nothing runs: connections stay open
// and are checked at the start of the next call. (Tests may hand it a loop
// that also serves fake nodes, so one thread runs both.)
//
// What one Call does:
//   - A write (a cluster::Command) is stamped with this client's id and the
//     next sequence number in Command.request_id. Every retry of that call,
//     to any endpoint, sends the same request with the same ids, so the
//     state machine's session table applies it at most once (Raft thesis
//     6.3). Reads (cluster::Query) carry no ids.
//   - Leader discovery. The client keeps the endpoint it believes leads.
//     When it knows none, it asks every endpoint for its NodeStatus at once
//     (a status request, answered by the node itself), learns each
//     endpoint's node id, and picks the endpoint whose node says it leads
//     (highest term), else the endpoint of the leader the freshest status
//     names, if that endpoint answered too. Without either, it tries the
//     endpoints in turn (those that answered first) with allow_forward
//     set, so a follower that knows a leader forwards.
//   - Outcomes. OK and REJECTED are final: the response is returned. NOT
//     LEADER with a hint naming a known endpoint goes there at once (a
//     redirect); with an unknown hint or none, the next endpoint is tried
//     with allow_forward. UNKNOWN, a connection error and a call that gets
//     no reply within call_timeout_us are retried, the same ids, after a
//     jittered exponential backoff (backoff_min_us .. backoff_max_us, equal
//     jitter from a seeded Rng), with the leader rediscovered, until
//     deadline_us has passed since the call began.
//
// Errors (absl::Status; OK and REJECTED responses are values, not errors):
//   INVALID_ARGUMENT   the request is not one Call takes (no operation, a
//                      status request, a request_id already set, a call
//                      body above kCallBodyBytesDefault);
//   UNAVAILABLE        no endpoint answered anything before the deadline;
//                      the message names every endpoint and what went wrong
//                      with it (refused, reset, no reply in time);
//   DEADLINE_EXCEEDED  endpoints answered, but none with a final answer
//                      before the deadline (no leader, UNKNOWN), naming the
//                      last answer.
// For a write, both last two say the write may or may not have been
// applied and name its request id: retrying with the same id is safe.
//
// Thread: one thread, the one that created the client (its loop's thread);
// not thread-safe.
//
//   ClientOptions options;
//   options.endpoints = {"127.0.0.1:7001", "127.0.0.1:7002"};
//   ASSIGN_OR_RETURN(std::unique_ptr<Client> client,
//                    Client::Create(std::move(options)));
//   api::ClientRequest request;
//   *request.mutable_command()->mutable_kv_put() = ...;
//   ASSIGN_OR_RETURN(api::ClientResponse response, client->Call(request));
//   if (response.status() == api::ClientResponse::STATUS_REJECTED) ...
#ifndef BLIXARD_NET_API_CLIENT_H_
#define BLIXARD_NET_API_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/logger.h"
#include "core/base/rng.h"
#include "core/env.h"
#include "core/proto/api.pb.h"
#include "net/api/client_protocol.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"
#include "net/transport/connection.h"
#include "net/transport/frame.h"
#include "net/transport/socket.h"

namespace blixard::net {

struct ClientOptions {
  // The nodes' client addresses, "HOST:PORT" with a numeric IPv4 HOST (no
  // name resolution: it could block). REQUIRES: 1..Client::kEndpointsMax,
  // distinct.
  std::vector<std::string> endpoints;
  // One attempt at one endpoint: connect, send, reply. REQUIRES: 1 ms ..
  // 1 hour.
  int64_t call_timeout_us = 2 * kMicrosPerSecond;
  // Every attempt of one Call together. REQUIRES: 1 ms .. 1 day.
  int64_t deadline_us = 10 * kMicrosPerSecond;
  // The session id stamped on every write (request_id.client_id). 0: a
  // random non-zero id drawn at Create.
  uint64_t client_id = 0;
  // The sequence of the first write; each write takes the next. REQUIRES:
  // >= 1 (0 is "no sequence").
  uint64_t next_sequence = 1;
  // Retry backoff bounds. REQUIRES: 1 ms <= min <= max <= 1 minute.
  int64_t backoff_min_us = 10 * kMicrosPerMilli;
  int64_t backoff_max_us = 500 * kMicrosPerMilli;
  // Seeds the backoff jitter; 0: a random seed.
  uint64_t seed = 0;
  // The largest reply body accepted. REQUIRES: 1 KiB..kFrameBodyBytesMax.
  size_t reply_body_bytes_max = kFrameBodyBytesMax;
  // Debug lines about attempts, Info about redirects. Null: none.
  Logger* logger = nullptr;
  // Wraps each connected socket (the TLS slot). Empty: plaintext.
  ConnectionFactory connection_factory;

  // INVALID_ARGUMENT naming the first bad field (or endpoint).
  absl::Status Validate() const;
};

// "127.0.0.1:7001" -> {"127.0.0.1", 7001}. INVALID_ARGUMENT unless HOST is
// a numeric IPv4 address and PORT is in 1..65535.
absl::StatusOr<SocketAddress> ParseEndpoint(absl::string_view endpoint);

// Counters since creation.
struct ClientCounters {
  uint64_t calls = 0;           // Call()s
  uint64_t attempts = 0;        // requests sent (retries and redirects too)
  uint64_t status_probes = 0;   // status requests sent (discovery, NodeStatusAt)
  uint64_t discoveries = 0;     // rounds of status probes
  uint64_t redirects = 0;       // NOT_LEADER with a hint we could follow
  uint64_t retries = 0;         // backoffs taken before a retry
  uint64_t connects = 0;        // connections established
  uint64_t connection_errors = 0;  // connections that failed or broke
  uint64_t timeouts = 0;        // attempts with no reply in call_timeout_us
  uint64_t stale_replies = 0;   // replies to calls no longer awaited
};

class Client {
 public:
  static constexpr size_t kEndpointsMax = 64;
  // Reads per connection per loop wake-up, and their size.
  static constexpr size_t kReadChunkBytes = 64 * 1024;
  static constexpr size_t kReadChunksPerWakeMax = 16;

  // Validates `options`, creates the loop and, when asked to, draws the
  // client id and seed from the kernel (getrandom). Connects to nothing
  // yet. Errors: Validate's INVALID_ARGUMENT; EventLoop::Create's and
  // getrandom's errors. The calling thread becomes the client's thread.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);

  // The same, on `loop` instead of a loop of its own: whatever else is
  // registered there runs inside Call too. For tests, which serve fake
  // nodes on the thread the client blocks. REQUIRES: loop != nullptr,
  // outlives the client; called on its thread.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options,
                                                        EventLoop* loop);

  // Closes every connection. REQUIRES: the client's thread.
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `request` to the cluster and returns its final response (status
  // OK or REJECTED), retrying as described above until the deadline.
  // Errors: see the file comment. REQUIRES: the client's thread; `request`
  // holds a command or a query; no status request; a command's request_id
  // unset (the client sets it: INVALID_ARGUMENT otherwise).
  absl::StatusOr<api::ClientResponse> Call(api::ClientRequest request);

  // Asks endpoint `endpoint` (an index into options.endpoints) for its
  // NodeStatus: one attempt, no retry, at most call_timeout_us. Records the
  // endpoint's node id. Errors: UNAVAILABLE (connection failed or broke),
  // DEADLINE_EXCEEDED (no reply in time), FAILED_PRECONDITION (the node
  // answered, but not with a status: the error it gave). REQUIRES:
  // endpoint < endpoint_count().
  absl::StatusOr<api::NodeStatus> NodeStatusAt(size_t endpoint, bool with_digest = false);

  // Asks the endpoints for their status in turn (NodeStatusAt) and returns
  // the address of the first that says it leads; nullopt when none does.
  std::optional<SocketAddress> FindLeader();

  uint64_t client_id() const { return client_id_; }
  // The sequence the next write will carry.
  uint64_t next_sequence() const { return next_sequence_; }
  size_t endpoint_count() const { return endpoints_.size(); }
  const SocketAddress& endpoint(size_t index) const;
  // The node id an endpoint said it is (0: not learned yet).
  uint64_t endpoint_node_id(size_t index) const;
  // The endpoint believed to lead, if any.
  std::optional<size_t> leader_endpoint() const { return leader_; }
  const ClientCounters& counters() const { return counters_; }
  // The loop the client runs (its own, or the one it was given).
  EventLoop& loop() { return *loop_; }
  // One line per endpoint: address, node id, connection state, calls
  // awaited on it.
  std::string DebugString() const;

  void CheckInvariants() const;

 private:
  struct Endpoint;
  // A call sent and possibly answered: what Attempt waits for.
  struct Pending {
    size_t endpoint;
    bool done = false;
    absl::Status error;  // done without a reply: why
    api::ClientResponse response;
  };
  // What one attempt came to.
  struct Outcome {
    bool replied = false;
    api::ClientResponse response;  // replied
    absl::Status error;            // !replied: UNAVAILABLE or DEADLINE_EXCEEDED
  };
  // What a Call has seen, for its final error.
  struct CallLog;

  Client(ClientOptions options, std::vector<SocketAddress> addresses,
         std::unique_ptr<EventLoop> own_loop, EventLoop* loop,
         uint64_t client_id, uint64_t seed);

  static absl::StatusOr<std::unique_ptr<Client>> Create(
      ClientOptions options, EventLoop* loop,
      std::unique_ptr<EventLoop> own_loop);

  // Leader discovery (see the file comment); returns the endpoints that
  // answered. Waits at most until min(now + call_timeout_us, deadline).
  std::set<size_t> Discover(MonoMicros deadline, CallLog* log);
  // Sends `request` to `endpoint` and waits for the reply until `until`.
  Outcome Attempt(size_t endpoint, const api::ClientRequest& request,
                  MonoMicros until);
  // Queues a call on `endpoint`, connecting first if need be; returns its
  // call id (a key of pending_; done at once if the connect failed).
  uint64_t StartCall(size_t endpoint, const api::ClientRequest& request);
  // Forgets a pending call: a reply to it will be counted stale.
  void Abandon(uint64_t call_id);
  // Runs the loop until `done()` or the clock reaches `until`; returns
  // done().
  bool RunUntil(const std::function<bool()>& done, MonoMicros until);
  void SleepWithBackoff(uint32_t failures, MonoMicros deadline);

  // Connections.
  void Connect(size_t endpoint);
  void OnDialReady(size_t endpoint);
  void OnConnected(size_t endpoint, UniqueFd fd);
  void OnConnectionEvent(size_t endpoint, uint32_t events);
  void Flush(size_t endpoint);
  // May Fail the endpoint (epoll_ctl error).
  void SetWriteInterest(size_t endpoint, bool on);
  // Ends the endpoint's connection; every call awaited on it is done with
  // UNAVAILABLE naming the endpoint and `why`.
  void Fail(size_t endpoint, absl::string_view why);

  const ClientOptions options_;
  // Null when the client runs on a loop it was given.
  std::unique_ptr<EventLoop> own_loop_;
  EventLoop* const loop_;
  NullLogger null_logger_;
  Logger* const logger_;  // options_.logger, or null_logger_
  const ConnectionFactory factory_;
  const uint64_t client_id_;
  uint64_t next_sequence_;
  Rng rng_;
  ClientCounters counters_;

  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::optional<size_t> leader_;
  // Where the next "try the endpoints in turn" starts.
  size_t rotation_ = 0;
  std::map<uint64_t, Pending> pending_;
  uint64_t next_call_id_ = 1;
  std::unique_ptr<char[]> read_buffer_;
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_CLIENT_H_
