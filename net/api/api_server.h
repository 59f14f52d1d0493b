// ApiServer: the client protocol's server side, on the EventLoop
// (ARCHITECTURE.md, "Production runtime": Clients). It accepts TCP
// connections from clients (the `blixard` CLI, client.h, tests), decodes
// ClientCall frames (client_protocol.h), hands each request to a handler
// (client_handler.h: the runtime passes Host::Submit plus its own status
// answer) and writes each ClientReply back on the call's connection.
// Everything runs on the loop thread; there are no threads.
//
// Shape:
//   - Calls are pipelined: a connection may carry up to
//     calls_in_flight_max calls whose replies have not come yet, and the
//     replies go out in the order the handler produces them, tagged with
//     the client's call id. A call beyond that bound is answered at once
//     with STATUS_REJECTED ("a limit reached": definitely not applied) and
//     counted; the connection stays up.
//   - A reply may run later than the handler call, and after its
//     connection closed (or the server was stopped or destroyed): it is
//     then dropped and counted (replies_dropped) — never written to another
//     connection, never touching freed memory. Each reply holds only a weak
//     reference to the server and the connection's id, which is never
//     reused.
//   - Bounds, all named options validated at Create: connections
//     (connections_max; one more is closed at accept), calls in flight per
//     connection, the body size of a received frame (checked from the
//     header, before any body byte is buffered), reply bytes queued for a
//     client that does not read (output_bytes_max: the connection is
//     closed), the time to the first call (handshake_timeout_us) and the
//     time a connection may sit with nothing in flight (idle_timeout_us).
//   - Refusals: garbage, a peer-protocol frame (a node dialed this port), an
//     oversized or corrupt frame, a reply frame, a body that does not parse
//     or carries call id 0, a call id already in flight: the connection is
//     closed with a logged reason and a per-reason counter; nothing else
//     changes (the other connections, the calls already handed over).
//   - A connection is a small state machine, printed by DebugString:
//         kAwaitingCall --first call--> kOpen --error/EOF/timeout--> closed
//     A client that half-closes (EOF) ends its connection; replies still
//     due to it are dropped.
//
// Every close is counted in counters().closed[reason] and logged (Debug
// when the client just went away, Info for idle timeouts, Warning for
// refusals and errors; Stop()'s closes in one Info line).
//
// Thread: the loop thread only (CHECKed); the loop must outlive the
// server. The handler and every reply run on the loop thread. The handler
// may call reply right away, and may call Stop(); it must not destroy the
// server.
//
//   ApiServerOptions options;
//   options.listen = {"127.0.0.1", 0};
//   options.logger = &logger;
//   ASSIGN_OR_RETURN(std::unique_ptr<ApiServer> server,
//                    ApiServer::Create(loop, std::move(options), handler));
//   logger.Info("serving clients on ", server->address().ToString());
#ifndef BLIXARD_NET_API_API_SERVER_H_
#define BLIXARD_NET_API_API_SERVER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/logger.h"
#include "core/env.h"
#include "core/proto/api.pb.h"
#include "net/api/client_handler.h"
#include "net/api/client_protocol.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"
#include "net/transport/connection.h"
#include "net/transport/frame.h"
#include "net/transport/socket.h"

namespace blixard::net {

struct ApiServerOptions {
  // Where to accept clients (numeric IPv4). Port 0: an ephemeral port
  // (port()).
  SocketAddress listen{"127.0.0.1", 0};
  int listen_backlog = 128;  // REQUIRES: 1..4096

  // Open client connections; one more is closed as soon as it is accepted.
  // REQUIRES: 1..kConnectionsMaxLimit.
  size_t connections_max = 1024;
  // Calls per connection handed to the handler and not yet answered.
  // REQUIRES: 1..65536.
  size_t calls_in_flight_max = 256;
  // The largest ClientCall body accepted. The default leaves room for the
  // largest command the state machine takes (4 MiB) plus its envelope, and
  // is the largest call the Client sends.
  // REQUIRES: 1 KiB..kFrameBodyBytesMax.
  size_t frame_body_bytes_max = kCallBodyBytesDefault;
  // Reply bytes queued for one connection and not yet taken by its socket:
  // a client that stops reading is closed (kOutputFull) when a reply would
  // go above it. REQUIRES: >= FrameBytes(kFrameBodyBytesMax) (the largest
  // reply fits an empty queue) and <= 1 GiB.
  size_t output_bytes_max = size_t{32} << 20;

  // Microseconds on the loop's clock. REQUIRES: each in [1 ms, 1 day].
  // A new connection must send its first complete call within this long.
  int64_t handshake_timeout_us = 5 * kMicrosPerSecond;
  // A connection with no call in flight and no complete call received and
  // no reply queued for this long is closed (the client is gone or
  // forgot it; it reconnects when it needs to).
  int64_t idle_timeout_us = 300 * kMicrosPerSecond;

  // For logs: "<name>: connection from 127.0.0.1:5123 closed (...)".
  std::string name = "api";
  // REQUIRES: not null; outlives the server.
  Logger* logger = nullptr;
  // Wraps each accepted socket (the TLS slot). Empty: plaintext.
  ConnectionFactory connection_factory;

  // INVALID_ARGUMENT naming the first bad field.
  absl::Status Validate() const;
};

// Why a client connection ended. Every close counts under exactly one.
enum class ApiCloseReason : uint8_t {
  kClientClosed = 0,    // EOF from the client
  kIoError,             // read/write error (reset, ...)
  kBadFrame,            // bad magic, version, type or flags (garbage)
  kWrongProtocol,       // a peer-protocol frame: a node dialed this port
  kFrameTooLarge,       // a header announced a body above the cap
  kBadChecksum,         // a body's CRC-32 did not match
  kUnexpectedFrame,     // a reply frame sent to the server
  kBadBody,             // a call that does not parse, or call id 0
  kDuplicateCallId,     // a call id already in flight on the connection
  kHandshakeTimeout,    // no complete call within handshake_timeout_us
  kIdleTimeout,         // nothing in flight for idle_timeout_us
  kOutputFull,          // replies above output_bytes_max: not reading
  kTooManyConnections,  // connections_max reached at accept
  kConnectionSetup,     // the connection factory or a socket call failed
  kStopped,             // Stop() or the destructor
};
inline constexpr size_t kApiCloseReasonCount =
    static_cast<size_t>(ApiCloseReason::kStopped) + 1;

// "client_closed", "io_error", ..., "stopped": the enumerator in
// snake_case.
absl::string_view ApiCloseReasonName(ApiCloseReason reason);

// Counters since creation (read them through counters()).
struct ApiServerCounters {
  uint64_t accepted = 0;
  uint64_t accept_errors = 0;
  uint64_t calls = 0;               // requests handed to the handler
  uint64_t calls_over_limit = 0;    // answered REJECTED: calls_in_flight_max
  uint64_t replies = 0;             // replies queued to their connection
  // Its connection closed first (or closed because of it: kOutputFull).
  uint64_t replies_dropped = 0;
  uint64_t replies_too_large = 0;   // replaced by an error answer
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  std::array<uint64_t, kApiCloseReasonCount> closed{};

  uint64_t closed_by(ApiCloseReason reason) const {
    return closed[static_cast<size_t>(reason)];
  }
};

class ApiServer {
 public:
  enum class ConnectionState : uint8_t { kAwaitingCall, kOpen };

  // Upper bound for options.connections_max: each connection is one fd in
  // the loop, which also holds the node's peers, pidfds and eventfds.
  static constexpr size_t kConnectionsMaxLimit = EventLoop::kFdsMax / 2;
  // Reading: at most kReadChunkBytes per read(2), at most
  // kReadChunksPerWakeMax reads per connection per loop wake-up (the loop
  // is level-triggered: the rest waits one iteration, so one busy client
  // cannot starve the others or the Host's own events).
  static constexpr size_t kReadChunkBytes = 64 * 1024;
  static constexpr size_t kReadChunksPerWakeMax = 16;
  // Accepts per listener wake-up, for the same reason.
  static constexpr size_t kAcceptsPerWakeMax = 64;
  // After an accept error that is not the new connection's own (EMFILE),
  // the listener is paused this long instead of failing on every
  // iteration.
  static constexpr int64_t kAcceptPauseUs = 100 * kMicrosPerMilli;

  // Validates `options`, binds, listens and registers the listener with
  // `loop`. Errors: Validate's INVALID_ARGUMENT; ListenTcp's, LocalPort's
  // and AddFd's errors (a port in use is ALREADY_EXISTS naming bind and
  // the address). REQUIRES: loop thread; loop != nullptr and outlives the
  // server; handler not empty.
  static absl::StatusOr<std::unique_ptr<ApiServer>> Create(
      EventLoop* loop, ApiServerOptions options, ClientHandler handler);

  // Stop(), then every reply still held by a handler becomes a no-op.
  // REQUIRES: loop thread; not from inside the handler.
  ~ApiServer();

  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Stops accepting (the listener is closed, so its port refuses new
  // clients) and closes every connection (kStopped); replies that come
  // later are dropped. Idempotent. Loop thread; may be called from the
  // handler.
  void Stop();
  bool stopped() const { return stopped_; }

  // The bound port (kept after Stop, for logs).
  uint16_t port() const { return port_; }
  SocketAddress address() const { return SocketAddress{options_.listen.host, port_}; }

  const ApiServerCounters& counters() const { return counters_; }
  size_t connections() const { return connections_.size(); }
  // Calls handed to the handler and not answered, over all connections.
  size_t calls_in_flight() const;
  // One line per connection: id, remote, state, calls in flight, queued
  // reply bytes.
  std::string DebugString() const;

  void CheckInvariants() const;

 private:
  struct Conn;
  // What a reply holds on to: a weak reference to the server through it.
  struct Life {
    ApiServer* server;
  };

  ApiServer(EventLoop* loop, ApiServerOptions options, ClientHandler handler);
  absl::Status Listen();

  void OnListenerReady();
  void AcceptOne(AcceptedSocket accepted);
  void OnConnectionEvent(uint64_t id, uint32_t events);
  // Decodes and handles what connection `id` has buffered. False when the
  // connection was closed (by an error, or by the handler).
  bool DrainCalls(uint64_t id);
  // Hands one call to the handler, or refuses it. False when the
  // connection was closed.
  bool HandleCall(uint64_t id, api::ClientCall call);
  // A reply for call `call_id` on connection `id` (from a handler's
  // reply function).
  void OnReply(uint64_t id, uint64_t call_id, const api::ClientResponse& response);
  // Queues one reply frame on `conn` and asks the loop for writability.
  // False when that closed the connection (output full, epoll error).
  // `is_command`: what an answer too large to send is replaced with.
  bool QueueReply(Conn& conn, uint64_t call_id, bool is_command,
                  const api::ClientResponse& response);
  void Flush(uint64_t id);
  bool SetWriteInterest(Conn& conn, bool on);
  void ArmTimer(Conn& conn, MonoMicros deadline);
  void OnTimer(uint64_t id);
  void Close(uint64_t id, ApiCloseReason reason, absl::string_view detail);

  void CountClose(ApiCloseReason reason) {
    ++counters_.closed[static_cast<size_t>(reason)];
  }
  void LogClose(ApiCloseReason reason, absl::string_view what,
                absl::string_view detail);

  EventLoop* const loop_;
  const ApiServerOptions options_;
  Logger* const logger_;
  const ConnectionFactory factory_;
  const ClientHandler handler_;
  ApiServerCounters counters_;
  // Held only here; replies hold weak references. Reset by the destructor.
  std::shared_ptr<Life> life_;

  UniqueFd listen_fd_;
  uint16_t port_ = 0;
  EventLoop::TimerHandle accept_pause_timer_ = 0;
  bool stopped_ = false;

  // Ordered: DebugString and CheckInvariants walk them in id order. Ids
  // are never reused, so a late reply cannot reach a newer connection.
  std::map<uint64_t, std::unique_ptr<Conn>> connections_;
  uint64_t next_connection_id_ = 1;
  // One read buffer for every connection: reads happen one at a time and
  // the decoder copies what it is fed.
  std::unique_ptr<char[]> read_buffer_;
};

absl::string_view ApiConnectionStateName(ApiServer::ConnectionState state);

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_API_SERVER_H_
