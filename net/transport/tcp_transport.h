// TcpTransport: the production blixard::Transport (core/env.h), peers over
// TCP on the EventLoop (ARCHITECTURE.md, "Production runtime": Frames,
// Peers). Everything runs on the loop thread; there are no threads.
//
// Shape (etcd's rafthttp streams, TigerBeetle's message bus):
//   - Messages are one-way. Each node dials every peer for its own sends
//     and accepts the peers' connections for receiving; nothing is ever
//     read from an outbound connection but its end (bytes there are a
//     protocol error).
//   - Two lanes lead to each peer (core/env.h Transport), each its own
//     long-lived outbound connection (a link) with its own queue, backoff
//     and stall check: the control lane (Send, SendBytes), dialed by
//     AddPeer, and the bulk lane (SendBulk: snapshot chunks), dialed by the
//     first SendBulk to the peer. A bulk lane's megabytes then wait in its
//     own socket and queue, never in front of a heartbeat: TCP is FIFO per
//     connection, so one connection for both would be head-of-line
//     blocking. The lanes fail and reconnect independently.
//   - The first frame on a connection is a HELLO (transport.proto): cluster
//     id, from, to, protocol version, minimum cluster version, lane. The
//     acceptor checks it before anything else is read; a mismatch closes
//     the connection with a logged reason and a per-reason counter, and
//     nothing that came on it is delivered. Every packet delivered from a
//     connection has `from` = the HELLO's `from` and `to` = this node,
//     whatever its payload says, and goes to the one receiver whatever its
//     lane.
//   - Each link has a bounded queue of encoded frames (control lane:
//     options.queue_packets_max <= Transport::kQueuePacketsMax packets and
//     options.queue_bytes_max bytes; bulk lane: bulk_queue_packets_max and
//     bulk_queue_bytes_max). A full queue drops the packet and the send
//     says kQueueFull, so the Host reports the peer unreachable and Raft
//     retransmits later (or the snapshot stream resends its chunk). Writes
//     are gathered (writev) from the queue until it is empty or the socket
//     is full; a send itself never writes, it only asks the loop for
//     writability, so the packets of one Host step leave in one syscall.
//   - Each outbound link is a state machine:
//         kConnecting --connect ok--> kConnected --error/EOF/stall--> kBackoff
//              ^   \--fail/timeout---------------------------------^   |
//              +-------------------- backoff timer --------------------+
//     While kConnecting or kConnected, sends queue. In kBackoff the link is
//     known to be down: sends return kUnreachable, and the queue was dropped
//     on entry (stale Raft traffic is worth less than a fresh probe). The
//     backoff is exponential from reconnect_backoff_min_us to
//     reconnect_backoff_max_us with jitter (uniform in [d/2, d], from the
//     seeded Rng), and starts over after a connection that stayed up for at
//     least reconnect_backoff_max_us.
//   - A peer that stops reading a link (the socket took no byte for
//     write_stall_timeout_us while frames wait) is disconnected
//     (kWriteStalled); so is a connect that does not complete within
//     connect_timeout_us.
//   - Inbound connections must say HELLO within handshake_timeout_us; at
//     most handshakes_max may be waiting at once (more are closed at
//     accept). A new connection from a peer replaces its older one of the
//     same lane (the peer dialed that lane again, so it gave up the old
//     connection); the other lane's is left alone.
//   - Bad frames, garbage, oversized lengths, bad bodies: the connection
//     closes with a reason and a counter; the node goes on; nothing changes.
//
// Every close is logged (Warning for refusals and protocol errors, Info for
// ordinary ends) with the peer, the remote address and the reason, and
// counted in counters().closed[reason].
//
// Thread: the loop thread only; the loop must outlive the transport. The
// receiver runs on the loop thread, from the loop (never inside Send); it
// may call any method except the destructor.
//
//   TcpTransportOptions options;
//   options.cluster_id = identity.cluster_id;
//   options.self = NodeId(1);
//   options.listen = {"127.0.0.1", 0};
//   options.logger = &logger;
//   ASSIGN_OR_RETURN(std::unique_ptr<TcpTransport> transport,
//                    TcpTransport::Create(loop, std::move(options)));
//   RETURN_IF_ERROR(transport->AddPeer(NodeId(2), {"127.0.0.1", 4002}));
//   Env env{&loop->clock(), &timers, transport.get(), &store, &executor};
#ifndef BLIXARD_NET_TRANSPORT_TCP_TRANSPORT_H_
#define BLIXARD_NET_TRANSPORT_TCP_TRANSPORT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/logger.h"
#include "core/base/rng.h"
#include "core/base/types.h"
#include "core/env.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"
#include "net/transport/connection.h"
#include "net/transport/frame.h"
#include "net/transport/socket.h"

namespace blixard::transport {
class PeerMessage;
}  // namespace blixard::transport

namespace blixard::net {

// The transport protocol (HELLO's protocol_version). A node speaks
// kProtocolVersion and accepts dialers in [kProtocolVersionMin,
// kProtocolVersion]; a change to the bodies' meaning bumps it. Version 2
// added lanes: a version 1 dialer has only a control lane, and a version 1
// acceptor, which would take a bulk connection for a control one that
// replaces the real one, refuses version 2 dialers instead.
inline constexpr uint32_t kProtocolVersion = 2;
inline constexpr uint32_t kProtocolVersionMin = 1;
// The first version whose HELLO may name the bulk lane.
inline constexpr uint32_t kBulkLaneProtocolVersionMin = 2;

// The lanes to a peer (core/env.h Transport; the values are
// transport.proto's Lane).
enum class Lane : uint8_t { kControl = 0, kBulk = 1 };
inline constexpr Lane kLanes[] = {Lane::kControl, Lane::kBulk};

// "control", "bulk".
absl::string_view LaneName(Lane lane);

struct TcpTransportOptions {
  uint64_t cluster_id = 0;  // REQUIRES: != 0
  NodeId self;              // REQUIRES: != kNoNode
  // Where to accept peers. Port 0: an ephemeral port (listen_port()).
  SocketAddress listen{"127.0.0.1", 0};
  int listen_backlog = 128;  // REQUIRES: 1..4096

  // The cluster version this node runs, and the lowest one it can run in
  // (sent in its HELLO). A dialer whose minimum is above our version is
  // refused. REQUIRES: 1 <= min_cluster_version <= cluster_version.
  uint32_t cluster_version = 1;
  uint32_t min_cluster_version = 1;

  // Per-peer outbound queue bounds of the control lane. REQUIRES: 1 <=
  // queue_packets_max <= Transport::kQueuePacketsMax; queue_bytes_max >=
  // FrameBytes(frame_body_bytes_max) (the largest packet fits an empty
  // queue).
  size_t queue_packets_max = Transport::kQueuePacketsMax;
  size_t queue_bytes_max = size_t{64} << 20;
  // The same for the bulk lane, with the same REQUIRES. Its packets are
  // snapshot chunks of up to 1 MiB, a window of a few per stream (see
  // core/host/snapshot_stream.h), so the byte bound is what binds: twice
  // the largest frame, room for many windows and their resends.
  size_t bulk_queue_packets_max = Transport::kQueuePacketsMax;
  size_t bulk_queue_bytes_max = size_t{32} << 20;
  // The largest body sent or accepted. REQUIRES: 1 KiB..kFrameBodyBytesMax.
  size_t frame_body_bytes_max = kFrameBodyBytesMax;

  // Timeouts, microseconds on the loop's clock. REQUIRES: each in
  // [1 ms, 1 hour].
  int64_t connect_timeout_us = 5 * kMicrosPerSecond;
  int64_t handshake_timeout_us = 5 * kMicrosPerSecond;
  int64_t write_stall_timeout_us = 10 * kMicrosPerSecond;
  // Reconnect backoff bounds. REQUIRES: 1 ms <= min <= max <= 1 hour.
  int64_t reconnect_backoff_min_us = 50 * kMicrosPerMilli;
  int64_t reconnect_backoff_max_us = 5 * kMicrosPerSecond;
  // Seeds the backoff jitter (decorrelates nodes that lost a peer at the
  // same moment).
  uint64_t seed = 1;

  // Inbound connections that have not said HELLO yet. REQUIRES: 1..4096.
  size_t handshakes_max = 64;

  // Socket buffer sizes (SocketOptions); 0 keeps the kernel's defaults.
  // REQUIRES: 0..64 MiB.
  int socket_send_buffer_bytes = 0;
  int socket_receive_buffer_bytes = 0;

  // REQUIRES: not null; outlives the transport.
  Logger* logger = nullptr;
  // Wraps each connected socket (the TLS slot). Empty: plaintext.
  ConnectionFactory connection_factory;

  // INVALID_ARGUMENT naming the first bad field.
  absl::Status Validate() const;

  // The queue bounds of `lane`.
  size_t QueuePacketsMax(Lane lane) const {
    return lane == Lane::kBulk ? bulk_queue_packets_max : queue_packets_max;
  }
  size_t QueueBytesMax(Lane lane) const {
    return lane == Lane::kBulk ? bulk_queue_bytes_max : queue_bytes_max;
  }
};

// Why a connection ended. Every close counts under exactly one reason.
enum class CloseReason : uint8_t {
  kPeerClosed = 0,      // EOF from the other end
  kIoError,             // read/write/connect error (reset, refused, ...)
  kConnectTimeout,      // outbound connect took longer than its timeout
  kBadFrame,            // bad magic, version, type or flags (garbage),
                        // or a client-protocol frame (a client dialed
                        // the peer port)
  kFrameTooLarge,       // a header announced a body above the cap
  kBadChecksum,         // a body's CRC-32 did not match
  kBadBody,             // a body that does not parse, or carries nothing
  kUnexpectedFrame,     // a frame out of order (no HELLO first, a second
                        // HELLO, bytes on an outbound connection)
  kHandshakeTimeout,    // no HELLO within handshake_timeout_us
  kWrongCluster,        // HELLO: another cluster id
  kUnknownPeer,         // HELLO: `from` is not a peer of this node
  kWrongTarget,         // HELLO: `to` is not this node
  kUnsupportedVersion,  // HELLO: protocol or cluster version out of range
  kBadLane,             // HELLO: an unknown lane, or one its protocol
                        // version does not have
  kWriteStalled,        // the peer stopped reading
  kReplaced,            // the peer opened a newer connection
  kPeerRemoved,         // RemovePeer
  kTooManyHandshakes,   // handshakes_max connections already waiting
  kConnectionSetup,     // the connection factory or a socket option failed
  kShutdown,            // the transport was destroyed
};
inline constexpr size_t kCloseReasonCount =
    static_cast<size_t>(CloseReason::kShutdown) + 1;

// "peer_closed", "io_error", ..., "shutdown": the enumerator in snake_case.
absl::string_view CloseReasonName(CloseReason reason);

// Outbound counters of one lane, all peers together.
struct TcpTransportLaneCounters {
  uint64_t dials = 0;            // connects started
  uint64_t connects = 0;         // connects that completed
  uint64_t packets_queued = 0;   // sends that returned kQueued
  uint64_t dropped_queue_full = 0;
  uint64_t dropped_unreachable = 0;  // unknown peer, or link in backoff
  uint64_t dropped_too_large = 0;    // body above frame_body_bytes_max
  uint64_t dropped_on_disconnect = 0;  // queued packets lost with a link
  uint64_t frames_written = 0;   // packets fully written to a socket
  uint64_t writes = 0;           // write calls that moved bytes
  uint64_t bytes_written = 0;
};

// Counters since creation (metrics come later; read them through
// counters()).
struct TcpTransportCounters {
  // Outbound, per lane.
  TcpTransportLaneCounters control;
  TcpTransportLaneCounters bulk;
  // Inbound, every lane.
  uint64_t accepted = 0;
  uint64_t accept_errors = 0;
  uint64_t handshakes = 0;       // HELLOs accepted
  uint64_t packets_delivered = 0;
  uint64_t dropped_no_receiver = 0;
  uint64_t bytes_read = 0;
  // Connections closed, outbound and inbound, by CloseReason.
  std::array<uint64_t, kCloseReasonCount> closed{};

  uint64_t closed_by(CloseReason reason) const {
    return closed[static_cast<size_t>(reason)];
  }
  const TcpTransportLaneCounters& lane(Lane which) const {
    return which == Lane::kBulk ? bulk : control;
  }
  TcpTransportLaneCounters& lane(Lane which) {
    return which == Lane::kBulk ? bulk : control;
  }
};

class TcpTransport final : public Transport {
 public:
  enum class PeerState : uint8_t { kConnecting, kConnected, kBackoff };

  // Reading: at most kReadChunkBytes per read(2), at most
  // kReadChunksPerWakeMax reads per connection per loop wake-up (the loop is
  // level-triggered: the rest waits one iteration, so one busy peer cannot
  // starve the others).
  static constexpr size_t kReadChunkBytes = 64 * 1024;
  static constexpr size_t kReadChunksPerWakeMax = 16;
  // Writing: at most kWritesPerWakeMax gathered writes per link per loop
  // wake-up, for the same reason on the sending side: a bulk lane to a
  // peer that drains it as fast as it is written would otherwise hold the
  // loop (and the control lane's writes) until its whole queue is out.
  static constexpr size_t kWritesPerWakeMax = 16;
  // Accepts per listener wake-up, for the same reason.
  static constexpr size_t kAcceptsPerWakeMax = 64;
  // After an accept error that is not the new connection's own (EMFILE,
  // ENOBUFS), the listener is paused this long: with level triggering it
  // would otherwise be reported ready, and fail, on every iteration.
  static constexpr int64_t kAcceptPauseUs = 100 * kMicrosPerMilli;
  // Peers in the address book.
  static constexpr size_t kPeersMax = 1024;
  // Close lines logged per close reason per second; past it the closes are
  // only counted (counters()), and the next line logged for that reason
  // says how many were left out. A peer that redials with a wrong cluster
  // id every few milliseconds must not flood the log.
  static constexpr uint32_t kCloseLogsPerSecondMax = 10;

  // Validates `options`, binds and listens, and registers the listener
  // with `loop`. Dials nothing yet (AddPeer does). Errors: Validate's
  // INVALID_ARGUMENT; ListenTcp's and AddFd's errors (a port in use is
  // INTERNAL naming bind and the address). REQUIRES: loop thread; loop !=
  // nullptr and outlives the transport.
  static absl::StatusOr<std::unique_ptr<TcpTransport>> Create(
      EventLoop* loop, TcpTransportOptions options);

  // Closes every connection and the listener (counted as kShutdown, not
  // logged) and cancels its timers. REQUIRES: loop thread; not from inside
  // the receiver.
  ~TcpTransport() override;

  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  // --- Transport (core/env.h). ---
  NodeId self() const override { return options_.self; }
  // REQUIRES: no receiver registered; receiver not empty.
  void SetReceiver(Receiver receiver) override;
  // kQueued, or: kUnreachable for an unknown peer or a lane in backoff;
  // kQueueFull when the lane's queue to the peer is at either bound, or
  // when the encoded body is above frame_body_bytes_max (dropped and
  // logged; it could never be sent). REQUIRES: to != self().
  SendResult Send(NodeId to, raft::Message message) override;
  SendResult SendBytes(NodeId to, std::string bytes) override;
  // The bulk lane. The first SendBulk to a peer dials its bulk connection
  // and queues (kQueued) while it connects; a dial that fails at once puts
  // the lane in backoff (kUnreachable). Once dialed, the lane stays open,
  // and reconnects, until the peer is removed.
  SendResult SendBulk(NodeId to, std::string bytes) override;
  // Packets queued for `to` on both lanes and not yet fully written to a
  // socket (0 for an unknown peer).
  size_t QueuedPackets(NodeId to) const override;
  // The same on one lane.
  size_t QueuedPackets(NodeId to, Lane lane) const;

  // --- Address book. ---

  // Makes `id` a peer: its HELLOs are accepted, and a connection to
  // `address` is started now (a connect that fails at once goes to
  // backoff). Errors: INVALID_ARGUMENT for id == self or kNoNode or a
  // non-numeric IPv4 address; ALREADY_EXISTS when `id` is a peer;
  // RESOURCE_EXHAUSTED at kPeersMax.
  absl::Status AddPeer(NodeId id, SocketAddress address);

  // Forgets `id`: closes its outbound and inbound connections on both lanes
  // (kPeerRemoved), drops its queues. Returns false when it was not a peer.
  bool RemovePeer(NodeId id);

  // --- Introspection. ---
  uint16_t listen_port() const { return listen_port_; }
  SocketAddress listen_address() const {
    return SocketAddress{options_.listen.host, listen_port_};
  }
  const TcpTransportCounters& counters() const { return counters_; }
  // The state of the link to `id` on `lane`; nullopt for an unknown peer,
  // or a bulk lane not dialed yet.
  std::optional<PeerState> peer_state(NodeId id,
                                      Lane lane = Lane::kControl) const;
  // Inbound connections: all, and those still waiting for their HELLO.
  size_t inbound_connections() const { return inbound_.size(); }
  size_t handshaking() const { return handshaking_; }
  // One line per peer and inbound connection, with their states.
  std::string DebugString() const;

  void CheckInvariants() const;

 private:
  struct Link;
  struct Peer;
  struct Inbound;

  TcpTransport(EventLoop* loop, TcpTransportOptions options);
  absl::Status Listen();

  // SendBytes and SendBulk.
  SendResult SendHostBytes(NodeId to, Lane lane, std::string bytes);

  // Outbound (tcp_transport_outbound.cc).
  SendResult Enqueue(NodeId to, Lane lane, const transport::PeerMessage& body);
  // The peer's link on `lane`; the first call for the bulk lane creates it
  // and starts its dial.
  Link& OpenLink(Peer& peer, Lane lane);
  void StartDial(Link& link);
  void OnDialReady(Link& link, uint32_t events);
  void OnConnected(Link& link, UniqueFd fd);
  void OnOutboundEvent(Link& link, uint32_t events);
  void Flush(Link& link);
  void OnStallTimer(Link& link);
  void SetWriteInterest(Link& link, bool on);
  // Ends the link's connection (or connect attempt) for `reason`, logs it,
  // drops its queue and, unless it is being removed, arms the backoff.
  void CloseOutbound(Link& link, CloseReason reason, absl::string_view detail,
                     bool reconnect = true);
  // Ends the link for good (its peer is removed, or the transport
  // destroyed), in whatever state it is.
  void StopLink(Link& link, CloseReason reason, absl::string_view detail);
  void ArmBackoff(Link& link);
  void CancelLinkTimers(Link& link);
  void CheckLinkInvariants(const Link& link) const;
  // For logs: "peer 2 at 127.0.0.1:4002", plus " (bulk lane)" for the bulk
  // lane.
  static std::string LinkName(const Link& link);

  // Inbound (tcp_transport_inbound.cc).
  void OnListenerReady();
  void AcceptOne(AcceptedSocket accepted);
  void OnInboundReady(uint64_t id);
  // Decodes and handles what `id` has buffered. False when the connection
  // was closed (by an error, or by the receiver).
  bool DrainFrames(uint64_t id);
  bool HandleHello(Inbound& inbound, const Frame& frame);
  void Deliver(Inbound& inbound, const Frame& frame);
  void CloseInbound(uint64_t id, CloseReason reason, absl::string_view detail);

  void CountClose(CloseReason reason) {
    ++counters_.closed[static_cast<size_t>(reason)];
  }
  void LogClose(CloseReason reason, absl::string_view what,
                absl::string_view detail);

  EventLoop* const loop_;
  const TcpTransportOptions options_;
  Logger* const logger_;
  const ConnectionFactory factory_;
  Rng rng_;
  Receiver receiver_;
  TcpTransportCounters counters_;

  UniqueFd listen_fd_;
  uint16_t listen_port_ = 0;
  EventLoop::TimerHandle accept_pause_timer_ = 0;

  // Ordered: DebugString and CheckInvariants walk them in id order.
  std::map<NodeId, std::unique_ptr<Peer>> peers_;
  std::map<uint64_t, std::unique_ptr<Inbound>> inbound_;
  uint64_t next_inbound_id_ = 1;
  size_t handshaking_ = 0;
  // One read buffer for every connection: reads happen one at a time and
  // the decoder copies what it is fed.
  std::unique_ptr<char[]> read_buffer_;
  // LogClose's budget, per close reason: the second it counts in, lines
  // logged in it, closes left out since the last line.
  struct CloseLogBudget {
    MonoMicros window_start = 0;
    uint32_t logged = 0;
    uint64_t left_out = 0;
  };
  std::array<CloseLogBudget, kCloseReasonCount> close_log_budget_{};
};

absl::string_view PeerStateName(TcpTransport::PeerState state);

}  // namespace blixard::net

#endif  // BLIXARD_NET_TRANSPORT_TCP_TRANSPORT_H_
