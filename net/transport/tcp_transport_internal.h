// TcpTransport's per-connection state, shared by its three .cc files
// (tcp_transport.cc: API and address book; tcp_transport_outbound.cc:
// dialing, queues, writing; tcp_transport_inbound.cc: accepting, HELLO,
// decoding, delivery). Not for use outside them.
#ifndef BLIXARD_NET_TRANSPORT_TCP_TRANSPORT_INTERNAL_H_
#define BLIXARD_NET_TRANSPORT_TCP_TRANSPORT_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "core/base/types.h"
#include "core/env.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"
#include "net/transport/connection.h"
#include "net/transport/frame.h"
#include "net/transport/socket.h"
#include "net/transport/tcp_transport.h"

namespace blixard::net {

// For logs about a connection: "" on the control lane (the usual one, and
// the only one before lanes), " (bulk lane)" on the bulk lane.
inline absl::string_view LaneNote(Lane lane) {
  return lane == Lane::kBulk ? " (bulk lane)" : "";
}

// One outbound link: a lane's connection to a peer (or the attempt at one),
// its queue, and its reconnect state (see the state machine in
// tcp_transport.h).
struct TcpTransport::Link {
  Link(Peer* peer_in, Lane lane_in) : peer(peer_in), lane(lane_in) {}
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // The peer it leads to; owns the link.
  Peer* const peer;
  const Lane lane;
  PeerState state = PeerState::kBackoff;
  // kConnecting: the socket whose connect is in progress.
  UniqueFd dialing;
  // kConnected: the established connection.
  std::unique_ptr<Connection> connection;
  // Whether the loop watches the connection for writability (only while
  // bytes wait).
  bool write_interest = false;

  // Encoded frames not yet fully written, oldest first. The front may be
  // partly written (front_written bytes of it). While hello_queued, the
  // front is this connection's HELLO, which is not a packet.
  std::deque<std::string> queue;
  size_t front_written = 0;
  bool hello_queued = false;
  // Sum of the sizes of the queued packets (the HELLO excluded).
  size_t queue_bytes = 0;

  // Connect attempts since the last stable connection: the backoff
  // exponent.
  uint32_t failures = 0;
  MonoMicros connected_at_us = 0;
  // Since when the socket has refused bytes while frames wait (cleared by
  // any progress).
  std::optional<MonoMicros> stalled_since_us;
  // The connect timeout (kConnecting) or the backoff (kBackoff); 0: none.
  EventLoop::TimerHandle timer = 0;
  // The write-stall check (kConnected, while stalled); 0: none.
  EventLoop::TimerHandle stall_timer = 0;

  size_t packets() const { return queue.size() - (hello_queued ? 1u : 0u); }
};

// One peer: its address and the outbound links to it, one per lane.
struct TcpTransport::Peer {
  Peer(NodeId id_in, SocketAddress address_in)
      : id(id_in), address(std::move(address_in)) {}

  // The link on `lane`; nullptr for a bulk lane not opened yet.
  Link* link(Lane lane) { return lane == Lane::kBulk ? bulk.get() : &control; }
  const Link* link(Lane lane) const {
    return lane == Lane::kBulk ? bulk.get() : &control;
  }

  const NodeId id;
  const SocketAddress address;
  // Dialed by AddPeer.
  Link control{this, Lane::kControl};
  // Dialed by the first SendBulk (most peers never need one), then kept.
  std::unique_ptr<Link> bulk;
};

// One accepted connection: waiting for its HELLO (peer == kNoNode), then
// bound to the peer that said it.
struct TcpTransport::Inbound {
  Inbound(uint64_t id_in, std::unique_ptr<Connection> connection_in,
          std::string remote_in, size_t body_bytes_max)
      : id(id_in),
        connection(std::move(connection_in)),
        remote(std::move(remote_in)),
        decoder(body_bytes_max) {}

  const uint64_t id;
  std::unique_ptr<Connection> connection;
  const std::string remote;
  FrameDecoder decoder;
  NodeId peer;
  // The lane its HELLO named (kControl until then).
  Lane lane = Lane::kControl;
  // The HELLO deadline, while peer == kNoNode; 0 after.
  EventLoop::TimerHandle handshake_timer = 0;
  uint64_t packets = 0;
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_TRANSPORT_TCP_TRANSPORT_INTERNAL_H_
