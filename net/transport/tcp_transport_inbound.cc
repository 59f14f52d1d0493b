// TcpTransport, inbound: accepting, the HELLO check, decoding frames and
// delivering packets (tcp_transport.h).
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/base/check.h"
#include "net/transport/tcp_transport.h"
#include "net/transport/tcp_transport_internal.h"
#include "net/transport/transport.pb.h"

namespace blixard::net {
namespace {

CloseReason ReasonFor(FrameError error) {
  switch (error) {
    case FrameError::kBodyTooLarge:
      return CloseReason::kFrameTooLarge;
    case FrameError::kBadChecksum:
      return CloseReason::kBadChecksum;
    case FrameError::kNone:
    case FrameError::kBadMagic:
    case FrameError::kBadVersion:
    case FrameError::kBadType:
    case FrameError::kBadFlags:
    case FrameError::kWrongProtocol:  // a client on the peer port
      break;
  }
  return CloseReason::kBadFrame;
}

}  // namespace

void TcpTransport::OnListenerReady() {
  for (size_t i = 0; i < kAcceptsPerWakeMax; ++i) {
    absl::StatusOr<std::optional<AcceptedSocket>> accepted =
        AcceptTcp(listen_fd_.get());
    if (!accepted.ok()) {
      ++counters_.accept_errors;
      logger_->Warning("node ", self().value(), " transport: ",
                       accepted.status().ToString(), "; not accepting for ",
                       kAcceptPauseUs, " us");
      // Level-triggered: a listener that fails (EMFILE) stays ready, so
      // stop watching it for a while instead of spinning.
      if (loop_->ModifyFd(listen_fd_.get(), 0).ok()) {
        accept_pause_timer_ = loop_->AddTimerAt(
            loop_->clock().NowMicros() + kAcceptPauseUs, [this] {
              accept_pause_timer_ = 0;
              const absl::Status resumed =
                  loop_->ModifyFd(listen_fd_.get(), EventLoop::kReadable);
              CHECK(resumed.ok()) << "cannot watch the listener again: "
                                  << resumed;
            });
      }
      return;
    }
    if (!accepted->has_value()) return;
    AcceptOne(std::move(**accepted));
  }
}

void TcpTransport::AcceptOne(AcceptedSocket accepted) {
  ++counters_.accepted;
  const std::string what =
      absl::StrCat("inbound connection from ", accepted.remote);
  if (handshaking_ >= options_.handshakes_max) {
    // Closed by `accepted` going out of scope.
    CountClose(CloseReason::kTooManyHandshakes);
    LogClose(CloseReason::kTooManyHandshakes, what,
             absl::StrCat(handshaking_, " connections already wait for "
                                        "their HELLO (handshakes_max)"));
    return;
  }
  // Inbound connections carry no writes, but a TLS handshake will.
  absl::Status setup = SetNoDelay(accepted.fd.get());
  absl::StatusOr<std::unique_ptr<Connection>> connection;
  if (setup.ok()) {
    connection = factory_(std::move(accepted.fd), /*outbound=*/false,
                          accepted.remote);
    setup = connection.status();
  }
  if (!setup.ok()) {
    CountClose(CloseReason::kConnectionSetup);
    LogClose(CloseReason::kConnectionSetup, what, setup.ToString());
    return;
  }
  const uint64_t id = next_inbound_id_++;
  auto inbound = std::make_unique<Inbound>(id, std::move(*connection),
                                           accepted.remote,
                                           options_.frame_body_bytes_max);
  const absl::Status added =
      loop_->AddFd(inbound->connection->fd(), EventLoop::kReadable,
                   [this, id](uint32_t) { OnInboundReady(id); });
  if (!added.ok()) {
    CountClose(CloseReason::kConnectionSetup);
    LogClose(CloseReason::kConnectionSetup, what, added.ToString());
    return;
  }
  inbound->handshake_timer = loop_->AddTimerAt(
      loop_->clock().NowMicros() + options_.handshake_timeout_us, [this, id] {
        auto it = inbound_.find(id);
        CHECK(it != inbound_.end());
        it->second->handshake_timer = 0;
        CloseInbound(id, CloseReason::kHandshakeTimeout,
                     absl::StrCat("no HELLO within ",
                                  options_.handshake_timeout_us, " us"));
      });
  ++handshaking_;
  inbound_.emplace(id, std::move(inbound));
}

void TcpTransport::OnInboundReady(uint64_t id) {
  for (size_t i = 0; i < kReadChunksPerWakeMax; ++i) {
    auto it = inbound_.find(id);
    if (it == inbound_.end()) return;
    Inbound& inbound = *it->second;
    const IoResult read = inbound.connection->Read(
        absl::MakeSpan(read_buffer_.get(), kReadChunkBytes));
    switch (read.kind) {
      case IoResult::Kind::kWouldBlock:
        return;
      case IoResult::Kind::kEof:
        CloseInbound(id, CloseReason::kPeerClosed, "");
        return;
      case IoResult::Kind::kError:
        CloseInbound(id, CloseReason::kIoError, read.error.ToString());
        return;
      case IoResult::Kind::kOk:
        break;
    }
    counters_.bytes_read += read.bytes;
    inbound.decoder.Feed(absl::string_view(read_buffer_.get(), read.bytes));
    if (!DrainFrames(id)) return;
  }
  // More may be waiting: the loop reports the fd again next iteration.
}

bool TcpTransport::DrainFrames(uint64_t id) {
  while (true) {
    // Looked up each time: the receiver may have closed this connection
    // (RemovePeer) while it ran.
    auto it = inbound_.find(id);
    if (it == inbound_.end()) return false;
    Inbound& inbound = *it->second;
    absl::StatusOr<std::optional<Frame>> next = inbound.decoder.Next();
    if (!next.ok()) {
      CloseInbound(id, ReasonFor(inbound.decoder.error()),
                   next.status().ToString());
      return false;
    }
    if (!next->has_value()) return true;
    const Frame frame = std::move(**next);
    if (inbound.peer == kNoNode) {
      if (!HandleHello(inbound, frame)) return false;
      continue;
    }
    if (frame.type != FrameType::kPeerMessage) {
      CloseInbound(id, CloseReason::kUnexpectedFrame,
                   absl::StrCat("a ", FrameTypeName(frame.type),
                                " frame after the HELLO"));
      return false;
    }
    Deliver(inbound, frame);
  }
}

bool TcpTransport::HandleHello(Inbound& inbound, const Frame& frame) {
  CHECK(inbound.peer == kNoNode);
  const uint64_t id = inbound.id;
  if (frame.type != FrameType::kHello) {
    CloseInbound(id, CloseReason::kUnexpectedFrame,
                 absl::StrCat("the first frame is ", FrameTypeName(frame.type),
                              ", not hello"));
    return false;
  }
  transport::Hello hello;
  if (!hello.ParseFromString(frame.body)) {
    CloseInbound(id, CloseReason::kBadBody,
                 absl::StrCat("a ", frame.body.size(),
                              "-byte HELLO body that does not parse"));
    return false;
  }
  const std::string says =
      absl::StrCat("HELLO from ", hello.from(), " to ", hello.to());
  if (hello.cluster_id() != options_.cluster_id) {
    CloseInbound(id, CloseReason::kWrongCluster,
                 absl::StrCat(says, " is for cluster ",
                              absl::Hex(hello.cluster_id(), absl::kZeroPad16),
                              ", this node is in cluster ",
                              absl::Hex(options_.cluster_id, absl::kZeroPad16)));
    return false;
  }
  if (hello.protocol_version() < kProtocolVersionMin ||
      hello.protocol_version() > kProtocolVersion) {
    CloseInbound(id, CloseReason::kUnsupportedVersion,
                 absl::StrCat(says, " speaks protocol version ",
                              hello.protocol_version(), ", this node speaks [",
                              kProtocolVersionMin, ", ", kProtocolVersion,
                              "]"));
    return false;
  }
  if (hello.min_cluster_version() > options_.cluster_version) {
    CloseInbound(id, CloseReason::kUnsupportedVersion,
                 absl::StrCat(says, " needs cluster version >= ",
                              hello.min_cluster_version(),
                              ", this node runs cluster version ",
                              options_.cluster_version));
    return false;
  }
  // Proto3 keeps a lane number it does not know (a newer dialer's): it
  // must not be taken for one of ours.
  if (!transport::Lane_IsValid(hello.lane())) {
    CloseInbound(
        id, CloseReason::kBadLane,
        absl::StrCat(says, " names lane ", hello.lane(),
                     ", this node knows control (", transport::LANE_CONTROL,
                     ") and bulk (", transport::LANE_BULK, ")"));
    return false;
  }
  const auto lane = static_cast<Lane>(hello.lane());
  if (lane != Lane::kControl &&
      hello.protocol_version() < kBulkLaneProtocolVersionMin) {
    CloseInbound(id, CloseReason::kBadLane,
                 absl::StrCat(says, " names the ", LaneName(lane),
                              " lane in protocol version ",
                              hello.protocol_version(), ", which has none (",
                              kBulkLaneProtocolVersionMin, " added it)"));
    return false;
  }
  if (hello.to() != self().value()) {
    CloseInbound(id, CloseReason::kWrongTarget,
                 absl::StrCat(says, " is not for this node (",
                              self().value(), ")"));
    return false;
  }
  const NodeId from(hello.from());
  if (peers_.count(from) == 0) {
    CloseInbound(id, CloseReason::kUnknownPeer,
                 absl::StrCat(says, ": node ", hello.from(),
                              " is not a peer of this node"));
    return false;
  }
  // Accepted: the connection speaks for `from` from now on.
  loop_->CancelTimer(inbound.handshake_timer);
  inbound.handshake_timer = 0;
  inbound.peer = from;
  inbound.lane = lane;
  --handshaking_;
  ++counters_.handshakes;
  // The peer dialed this lane again, so it gave up its older connection
  // of the lane (it has one outbound link per peer and lane); the old one
  // may not have noticed yet. The other lane's connection is not this
  // one's predecessor: it stays.
  uint64_t older = 0;
  for (const auto& [other_id, other] : inbound_) {
    if (other_id != id && other->peer == from && other->lane == lane) {
      older = other_id;
    }
  }
  if (older != 0) {
    CloseInbound(
        older, CloseReason::kReplaced,
        absl::StrCat("peer ", from.value(), " opened a newer ", LaneName(lane),
                     " connection from ", inbound.remote));
  }
  logger_->Info("node ", self().value(), " transport: accepted peer ",
                from.value(), " from ", inbound.remote, " (", LaneName(lane),
                " lane)");
  return true;
}

void TcpTransport::Deliver(Inbound& inbound, const Frame& frame) {
  transport::PeerMessage message;
  if (!message.ParseFromString(frame.body) ||
      message.body_case() == transport::PeerMessage::BODY_NOT_SET) {
    CloseInbound(inbound.id, CloseReason::kBadBody,
                 absl::StrCat("a ", frame.body.size(), "-byte message from peer ",
                              inbound.peer.value(),
                              " that does not parse or carries nothing"));
    return;
  }
  ++inbound.packets;
  if (!receiver_) {
    ++counters_.dropped_no_receiver;
    return;
  }
  Packet packet;
  // Stamped from the handshake: a payload cannot speak for another node.
  packet.from = inbound.peer;
  packet.to = self();
  if (message.body_case() == transport::PeerMessage::kRaft) {
    packet.kind = Packet::Kind::kRaft;
    packet.raft = std::move(*message.mutable_raft());
  } else {
    packet.kind = Packet::Kind::kBytes;
    packet.bytes = std::move(*message.mutable_host_bytes());
  }
  ++counters_.packets_delivered;
  receiver_(std::move(packet));
}

void TcpTransport::CloseInbound(uint64_t id, CloseReason reason,
                                absl::string_view detail) {
  auto it = inbound_.find(id);
  CHECK(it != inbound_.end()) << "inbound " << id;
  std::unique_ptr<Inbound> inbound = std::move(it->second);
  inbound_.erase(it);
  CountClose(reason);
  LogClose(
      reason,
      inbound->peer == kNoNode
          ? absl::StrCat("inbound connection from ", inbound->remote)
          : absl::StrCat("inbound connection from peer ", inbound->peer.value(),
                         " at ", inbound->remote, LaneNote(inbound->lane)),
      detail);
  if (inbound->peer == kNoNode) {
    CHECK_GT(handshaking_, 0u);
    --handshaking_;
  }
  if (inbound->handshake_timer != 0) loop_->CancelTimer(inbound->handshake_timer);
  if (loop_->HasFd(inbound->connection->fd())) {
    loop_->RemoveFd(inbound->connection->fd()).IgnoreError();
  }
  inbound->connection->Close();
}

}  // namespace blixard::net
