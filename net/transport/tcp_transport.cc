// TcpTransport: options, creation and destruction, the Transport API, the
// address book, introspection. Dialing and writing live in
// tcp_transport_outbound.cc, accepting and delivering in
// tcp_transport_inbound.cc.
#include "net/transport/tcp_transport.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"
#include "net/transport/tcp_transport_internal.h"
#include "net/transport/transport.pb.h"

namespace blixard::net {
namespace {

constexpr int64_t kTimeoutMinUs = kMicrosPerMilli;
constexpr int64_t kTimeoutMaxUs = 3600 * kMicrosPerSecond;
constexpr size_t kFrameBodyBytesMin = 1024;
constexpr int kSocketBufferBytesMax = 64 << 20;
constexpr size_t kHandshakesMax = 4096;
constexpr int kListenBacklogMax = 4096;

absl::Status CheckTimeout(absl::string_view name, int64_t value) {
  if (value < kTimeoutMinUs || value > kTimeoutMaxUs) {
    return absl::InvalidArgumentError(
        absl::StrCat("TcpTransportOptions.", name, " = ", value,
                     " us, want [", kTimeoutMinUs, ", ", kTimeoutMaxUs, "]"));
  }
  return absl::OkStatus();
}

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("TcpTransportOptions.", field, ": ", why));
}

// One lane's queue bounds (the REQUIRES on queue_packets_max and
// queue_bytes_max in tcp_transport.h).
absl::Status CheckQueueBounds(absl::string_view packets_field,
                              size_t packets_max, absl::string_view bytes_field,
                              size_t bytes_max, size_t frame_body_bytes_max) {
  if (packets_max < 1 || packets_max > Transport::kQueuePacketsMax) {
    return Bad(packets_field, absl::StrCat(packets_max, ", want [1, ",
                                           Transport::kQueuePacketsMax, "]"));
  }
  if (bytes_max < FrameBytes(frame_body_bytes_max)) {
    return Bad(bytes_field,
               absl::StrCat(bytes_max,
                            " cannot hold one frame of frame_body_bytes_max=",
                            frame_body_bytes_max, " (",
                            FrameBytes(frame_body_bytes_max), " bytes)"));
  }
  return absl::OkStatus();
}

// HELLO carries transport.proto's Lane; the C++ enum mirrors it.
static_assert(static_cast<int>(Lane::kControl) == transport::LANE_CONTROL);
static_assert(static_cast<int>(Lane::kBulk) == transport::LANE_BULK);

}  // namespace

absl::Status TcpTransportOptions::Validate() const {
  if (cluster_id == 0) return Bad("cluster_id", "must not be 0");
  if (self == kNoNode) return Bad("self", "must not be 0");
  if (self.value() > kNodeIdMax) return Bad("self", "above kNodeIdMax");
  RETURN_IF_ERROR(Annotate(ValidateSocketAddress(listen),
                           "TcpTransportOptions.listen: "));
  if (listen_backlog < 1 || listen_backlog > kListenBacklogMax) {
    return Bad("listen_backlog", absl::StrCat(listen_backlog, ", want [1, ",
                                              kListenBacklogMax, "]"));
  }
  if (min_cluster_version < 1 || min_cluster_version > cluster_version) {
    return Bad("min_cluster_version",
               absl::StrCat(min_cluster_version, ", want [1, cluster_version=",
                            cluster_version, "]"));
  }
  if (frame_body_bytes_max < kFrameBodyBytesMin ||
      frame_body_bytes_max > kFrameBodyBytesMax) {
    return Bad("frame_body_bytes_max",
               absl::StrCat(frame_body_bytes_max, ", want [", kFrameBodyBytesMin,
                            ", ", kFrameBodyBytesMax, "]"));
  }
  RETURN_IF_ERROR(CheckQueueBounds("queue_packets_max", queue_packets_max,
                                   "queue_bytes_max", queue_bytes_max,
                                   frame_body_bytes_max));
  RETURN_IF_ERROR(CheckQueueBounds(
      "bulk_queue_packets_max", bulk_queue_packets_max, "bulk_queue_bytes_max",
      bulk_queue_bytes_max, frame_body_bytes_max));
  RETURN_IF_ERROR(CheckTimeout("connect_timeout_us", connect_timeout_us));
  RETURN_IF_ERROR(CheckTimeout("handshake_timeout_us", handshake_timeout_us));
  RETURN_IF_ERROR(
      CheckTimeout("write_stall_timeout_us", write_stall_timeout_us));
  RETURN_IF_ERROR(
      CheckTimeout("reconnect_backoff_min_us", reconnect_backoff_min_us));
  RETURN_IF_ERROR(
      CheckTimeout("reconnect_backoff_max_us", reconnect_backoff_max_us));
  if (reconnect_backoff_min_us > reconnect_backoff_max_us) {
    return Bad("reconnect_backoff_min_us",
               absl::StrCat(reconnect_backoff_min_us,
                            " above reconnect_backoff_max_us=",
                            reconnect_backoff_max_us));
  }
  if (handshakes_max < 1 || handshakes_max > kHandshakesMax) {
    return Bad("handshakes_max", absl::StrCat(handshakes_max, ", want [1, ",
                                              kHandshakesMax, "]"));
  }
  if (socket_send_buffer_bytes < 0 ||
      socket_send_buffer_bytes > kSocketBufferBytesMax) {
    return Bad("socket_send_buffer_bytes",
               absl::StrCat(socket_send_buffer_bytes, ", want [0, ",
                            kSocketBufferBytesMax, "]"));
  }
  if (socket_receive_buffer_bytes < 0 ||
      socket_receive_buffer_bytes > kSocketBufferBytesMax) {
    return Bad("socket_receive_buffer_bytes",
               absl::StrCat(socket_receive_buffer_bytes, ", want [0, ",
                            kSocketBufferBytesMax, "]"));
  }
  if (logger == nullptr) return Bad("logger", "must not be null");
  return absl::OkStatus();
}

absl::string_view CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeerClosed:
      return "peer_closed";
    case CloseReason::kIoError:
      return "io_error";
    case CloseReason::kConnectTimeout:
      return "connect_timeout";
    case CloseReason::kBadFrame:
      return "bad_frame";
    case CloseReason::kFrameTooLarge:
      return "frame_too_large";
    case CloseReason::kBadChecksum:
      return "bad_checksum";
    case CloseReason::kBadBody:
      return "bad_body";
    case CloseReason::kUnexpectedFrame:
      return "unexpected_frame";
    case CloseReason::kHandshakeTimeout:
      return "handshake_timeout";
    case CloseReason::kWrongCluster:
      return "wrong_cluster";
    case CloseReason::kUnknownPeer:
      return "unknown_peer";
    case CloseReason::kWrongTarget:
      return "wrong_target";
    case CloseReason::kUnsupportedVersion:
      return "unsupported_version";
    case CloseReason::kBadLane:
      return "bad_lane";
    case CloseReason::kWriteStalled:
      return "write_stalled";
    case CloseReason::kReplaced:
      return "replaced";
    case CloseReason::kPeerRemoved:
      return "peer_removed";
    case CloseReason::kTooManyHandshakes:
      return "too_many_handshakes";
    case CloseReason::kConnectionSetup:
      return "connection_setup";
    case CloseReason::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

absl::string_view LaneName(Lane lane) {
  switch (lane) {
    case Lane::kControl:
      return "control";
    case Lane::kBulk:
      return "bulk";
  }
  return "unknown";
}

absl::string_view PeerStateName(TcpTransport::PeerState state) {
  switch (state) {
    case TcpTransport::PeerState::kConnecting:
      return "connecting";
    case TcpTransport::PeerState::kConnected:
      return "connected";
    case TcpTransport::PeerState::kBackoff:
      return "backoff";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Creation and destruction.

absl::StatusOr<std::unique_ptr<TcpTransport>> TcpTransport::Create(
    EventLoop* loop, TcpTransportOptions options) {
  CHECK(loop != nullptr);
  CHECK(loop->InLoopThread());
  RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<TcpTransport> transport(
      new TcpTransport(loop, std::move(options)));
  RETURN_IF_ERROR(transport->Listen());
  transport->CheckInvariants();
  return transport;
}

TcpTransport::TcpTransport(EventLoop* loop, TcpTransportOptions options)
    : loop_(loop),
      options_(std::move(options)),
      logger_(options_.logger),
      factory_(options_.connection_factory ? options_.connection_factory
                                           : PlaintextConnectionFactory()),
      rng_(Rng(options_.seed).Fork("tcp_transport_backoff")),
      read_buffer_(new char[kReadChunkBytes]) {}

absl::Status TcpTransport::Listen() {
  SocketOptions socket_options;
  socket_options.send_buffer_bytes = options_.socket_send_buffer_bytes;
  socket_options.receive_buffer_bytes = options_.socket_receive_buffer_bytes;
  ASSIGN_OR_RETURN(listen_fd_, ListenTcp(options_.listen,
                                         options_.listen_backlog,
                                         socket_options));
  ASSIGN_OR_RETURN(listen_port_, LocalPort(listen_fd_.get()));
  RETURN_IF_ERROR(loop_->AddFd(listen_fd_.get(), EventLoop::kReadable,
                               [this](uint32_t) { OnListenerReady(); }));
  logger_->Info("node ", options_.self.value(), " transport: listening on ",
                listen_address().ToString());
  return absl::OkStatus();
}

TcpTransport::~TcpTransport() {
  CHECK(loop_->InLoopThread());
  for (auto& [id, peer] : peers_) {
    for (Lane lane : kLanes) {
      if (Link* link = peer->link(lane)) {
        StopLink(*link, CloseReason::kShutdown, "");
      }
    }
  }
  while (!inbound_.empty()) {
    CloseInbound(inbound_.begin()->first, CloseReason::kShutdown, "");
  }
  if (accept_pause_timer_ != 0) loop_->CancelTimer(accept_pause_timer_);
  if (listen_fd_.valid() && loop_->HasFd(listen_fd_.get())) {
    // The fd is ours and about to be closed; a failed epoll_ctl(DEL) leaves
    // nothing behind once it is.
    loop_->RemoveFd(listen_fd_.get()).IgnoreError();
  }
}

// ---------------------------------------------------------------------------
// Transport.

void TcpTransport::SetReceiver(Receiver receiver) {
  CHECK(loop_->InLoopThread());
  CHECK(!receiver_) << "TcpTransport receiver registered twice";
  CHECK(receiver) << "TcpTransport receiver is empty";
  receiver_ = std::move(receiver);
}

Transport::SendResult TcpTransport::Send(NodeId to, raft::Message message) {
  CHECK_NE(to, self()) << "a node does not send to itself";
  transport::PeerMessage body;
  *body.mutable_raft() = std::move(message);
  return Enqueue(to, Lane::kControl, body);
}

Transport::SendResult TcpTransport::SendBytes(NodeId to, std::string bytes) {
  return SendHostBytes(to, Lane::kControl, std::move(bytes));
}

Transport::SendResult TcpTransport::SendBulk(NodeId to, std::string bytes) {
  return SendHostBytes(to, Lane::kBulk, std::move(bytes));
}

Transport::SendResult TcpTransport::SendHostBytes(NodeId to, Lane lane,
                                                  std::string bytes) {
  CHECK_NE(to, self()) << "a node does not send to itself";
  transport::PeerMessage body;
  body.set_host_bytes(std::move(bytes));
  return Enqueue(to, lane, body);
}

size_t TcpTransport::QueuedPackets(NodeId to) const {
  size_t packets = 0;
  for (Lane lane : kLanes) packets += QueuedPackets(to, lane);
  return packets;
}

size_t TcpTransport::QueuedPackets(NodeId to, Lane lane) const {
  auto it = peers_.find(to);
  if (it == peers_.end()) return 0;
  const Link* link = it->second->link(lane);
  return link == nullptr ? 0 : link->packets();
}

// ---------------------------------------------------------------------------
// Address book.

absl::Status TcpTransport::AddPeer(NodeId id, SocketAddress address) {
  CHECK(loop_->InLoopThread());
  if (id == kNoNode || id == self() || id.value() > kNodeIdMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node ", self().value(), " transport: cannot add peer ", id.value()));
  }
  RETURN_IF_ERROR(Annotate(ValidateSocketAddress(address),
                           absl::StrCat("peer ", id.value(), ": ")));
  if (peers_.count(id) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("node ", self().value(), " transport: peer ", id.value(),
                     " already added (at ", peers_[id]->address.ToString(),
                     ")"));
  }
  if (peers_.size() >= kPeersMax) {
    return absl::ResourceExhaustedError(
        absl::StrCat("node ", self().value(), " transport: ", kPeersMax,
                     " peers already (kPeersMax)"));
  }
  auto peer = std::make_unique<Peer>(id, std::move(address));
  Link& control = peer->control;
  peers_.emplace(id, std::move(peer));
  StartDial(control);
  return absl::OkStatus();
}

bool TcpTransport::RemovePeer(NodeId id) {
  CHECK(loop_->InLoopThread());
  auto it = peers_.find(id);
  if (it == peers_.end()) return false;
  for (Lane lane : kLanes) {
    if (Link* link = it->second->link(lane)) {
      StopLink(*link, CloseReason::kPeerRemoved, "removed from the peers");
    }
  }
  peers_.erase(it);
  // Its inbound connections (at most one per lane is bound to it).
  std::vector<uint64_t> bound;
  for (const auto& [inbound_id, inbound] : inbound_) {
    if (inbound->peer == id) bound.push_back(inbound_id);
  }
  for (uint64_t inbound_id : bound) {
    CloseInbound(inbound_id, CloseReason::kPeerRemoved,
                 "removed from the peers");
  }
  return true;
}

// ---------------------------------------------------------------------------
// Introspection.

std::optional<TcpTransport::PeerState> TcpTransport::peer_state(
    NodeId id, Lane lane) const {
  auto it = peers_.find(id);
  if (it == peers_.end()) return std::nullopt;
  const Link* link = it->second->link(lane);
  if (link == nullptr) return std::nullopt;
  return link->state;
}

std::string TcpTransport::LinkName(const Link& link) {
  return absl::StrCat("peer ", link.peer->id.value(), " at ",
                      link.peer->address.ToString(), LaneNote(link.lane));
}

std::string TcpTransport::DebugString() const {
  std::string out = absl::StrCat("node ", self().value(), " listening on ",
                                 listen_address().ToString(), "\n");
  for (const auto& [id, peer] : peers_) {
    for (Lane lane : kLanes) {
      const Link* link = peer->link(lane);
      if (link == nullptr) continue;
      absl::StrAppend(&out, "  ", LinkName(*link), ": ",
                      PeerStateName(link->state), ", ", link->packets(),
                      " packets (", link->queue_bytes, " bytes) queued, ",
                      link->failures, " failed attempts",
                      link->stalled_since_us ? ", write stalled" : "", "\n");
    }
  }
  for (const auto& [id, inbound] : inbound_) {
    absl::StrAppend(&out, "  inbound ", id, " from ", inbound->remote, ": ",
                    inbound->peer == kNoNode
                        ? std::string("waiting for HELLO")
                        : absl::StrCat("peer ", inbound->peer.value(),
                                       LaneNote(inbound->lane)),
                    ", ", inbound->packets, " packets delivered\n");
  }
  return out;
}

void TcpTransport::LogClose(CloseReason reason, absl::string_view what,
                            absl::string_view detail) {
  if (reason == CloseReason::kShutdown) return;
  CloseLogBudget& budget = close_log_budget_[static_cast<size_t>(reason)];
  const MonoMicros now = loop_->clock().NowMicros();
  if (budget.logged == 0 || now - budget.window_start >= kMicrosPerSecond) {
    budget.window_start = now;
    budget.logged = 0;
  }
  if (budget.logged >= kCloseLogsPerSecondMax) {
    ++budget.left_out;
    return;
  }
  ++budget.logged;
  const std::string left_out =
      budget.left_out == 0
          ? std::string()
          : absl::StrCat(" [", budget.left_out, " more closes for ", CloseReasonName(reason),
                         " not logged]");
  budget.left_out = 0;
  const bool ordinary = reason == CloseReason::kPeerClosed ||
                        reason == CloseReason::kReplaced ||
                        reason == CloseReason::kPeerRemoved;
  const std::string line =
      absl::StrCat("node ", self().value(), " transport: ", what, " closed (",
                   CloseReasonName(reason), ")", detail.empty() ? "" : ": ",
                   detail, left_out);
  logger_->Log(ordinary ? LogLevel::kInfo : LogLevel::kWarning, line);
}

void TcpTransport::CheckLinkInvariants(const Link& link) const {
  const NodeId id = link.peer->id;
  CHECK(link.peer->link(link.lane) == &link) << "peer " << id;
  size_t bytes = 0;
  for (size_t i = link.hello_queued ? 1 : 0; i < link.queue.size(); ++i) {
    bytes += link.queue[i].size();
    CHECK_GE(link.queue[i].size(), kFrameHeaderBytes);
  }
  CHECK_EQ(bytes, link.queue_bytes) << "peer " << id;
  CHECK_LE(link.packets(), options_.QueuePacketsMax(link.lane))
      << "peer " << id;
  CHECK_LE(link.queue_bytes, options_.QueueBytesMax(link.lane))
      << "peer " << id;
  if (link.queue.empty()) {
    CHECK_EQ(link.front_written, 0u);
  } else {
    CHECK_LT(link.front_written, link.queue.front().size());
  }
  switch (link.state) {
    case PeerState::kConnecting:
      CHECK(link.dialing.valid()) << "peer " << id;
      CHECK(link.connection == nullptr);
      CHECK(!link.hello_queued);
      CHECK_EQ(link.front_written, 0u);
      CHECK(loop_->IsTimerPending(link.timer)) << "peer " << id;
      break;
    case PeerState::kConnected:
      CHECK(!link.dialing.valid()) << "peer " << id;
      CHECK(link.connection != nullptr && link.connection->is_open());
      CHECK(loop_->HasFd(link.connection->fd()));
      CHECK_EQ(link.timer, 0u);
      // Bytes waiting <=> the loop watches for writability.
      CHECK_EQ(link.write_interest, !link.queue.empty()) << "peer " << id;
      break;
    case PeerState::kBackoff:
      CHECK(!link.dialing.valid()) << "peer " << id;
      CHECK(link.connection == nullptr);
      CHECK(link.queue.empty()) << "peer " << id;
      CHECK(loop_->IsTimerPending(link.timer)) << "peer " << id;
      break;
  }
  if (link.state != PeerState::kConnected) {
    CHECK(!link.write_interest);
    CHECK(!link.stalled_since_us.has_value());
  }
  if (link.stall_timer != 0) {
    CHECK(link.stalled_since_us.has_value()) << "peer " << id;
    CHECK(loop_->IsTimerPending(link.stall_timer));
  }
}

void TcpTransport::CheckInvariants() const {
  CHECK(loop_->InLoopThread());
  CHECK(listen_fd_.valid());
  CHECK_NE(listen_port_, 0);
  CHECK_LE(peers_.size(), kPeersMax);
  for (const auto& [id, peer] : peers_) {
    CHECK_EQ(peer->id, id);
    CHECK_NE(id, self());
    for (Lane lane : kLanes) {
      if (const Link* link = peer->link(lane)) {
        CHECK(link->peer == peer.get());
        CHECK(link->lane == lane);
        CheckLinkInvariants(*link);
      }
    }
  }
  size_t handshaking = 0;
  std::map<std::pair<NodeId, Lane>, uint64_t> bound;
  for (const auto& [id, inbound] : inbound_) {
    CHECK_EQ(inbound->id, id);
    CHECK_LT(id, next_inbound_id_);
    CHECK(inbound->connection != nullptr && inbound->connection->is_open());
    CHECK(loop_->HasFd(inbound->connection->fd()));
    inbound->decoder.CheckInvariants();
    CHECK(!inbound->decoder.failed()) << "inbound " << id;
    if (inbound->peer == kNoNode) {
      ++handshaking;
      CHECK(loop_->IsTimerPending(inbound->handshake_timer)) << "inbound " << id;
      CHECK_EQ(inbound->packets, 0u);
      CHECK(inbound->lane == Lane::kControl) << "inbound " << id;
    } else {
      CHECK_EQ(inbound->handshake_timer, 0u);
      CHECK(peers_.count(inbound->peer) != 0) << "inbound " << id;
      CHECK(bound.emplace(std::make_pair(inbound->peer, inbound->lane), id)
                .second)
          << "two inbound connections bound to peer " << inbound->peer
          << " on the " << LaneName(inbound->lane) << " lane";
    }
  }
  CHECK_EQ(handshaking, handshaking_);
  CHECK_LE(handshaking_, options_.handshakes_max);
  if (accept_pause_timer_ != 0) {
    CHECK(loop_->IsTimerPending(accept_pause_timer_));
  }
}

}  // namespace blixard::net
