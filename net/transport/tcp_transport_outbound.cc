// TcpTransport, outbound: the links to peers (one per lane), their queues,
// dialing with backoff, the HELLO, gathered writes, and the write-stall
// check (tcp_transport.h).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/base/check.h"
#include "net/transport/tcp_transport.h"
#include "net/transport/tcp_transport_internal.h"
#include "net/transport/transport.pb.h"

namespace blixard::net {

Transport::SendResult TcpTransport::Enqueue(
    NodeId to, Lane lane, const transport::PeerMessage& body) {
  CHECK(loop_->InLoopThread());
  TcpTransportLaneCounters& counters = counters_.lane(lane);
  auto it = peers_.find(to);
  if (it == peers_.end()) {
    ++counters.dropped_unreachable;
    return SendResult::kUnreachable;
  }
  Link& link = OpenLink(*it->second, lane);
  if (link.state == PeerState::kBackoff) {
    ++counters.dropped_unreachable;
    return SendResult::kUnreachable;
  }
  // Cheap checks first: a full queue should not cost a serialization.
  if (link.packets() >= options_.QueuePacketsMax(lane)) {
    ++counters.dropped_queue_full;
    return SendResult::kQueueFull;
  }
  const size_t body_bytes = body.ByteSizeLong();
  if (body_bytes > options_.frame_body_bytes_max) {
    ++counters.dropped_too_large;
    logger_->Error("node ", self().value(), " transport: dropped a ",
                   body.has_raft() ? "raft" : "bytes", " packet for ",
                   LinkName(link), ": ", body_bytes, " body bytes exceed the ",
                   options_.frame_body_bytes_max, "-byte frame limit");
    return SendResult::kQueueFull;
  }
  const size_t frame_bytes = FrameBytes(body_bytes);
  if (link.queue_bytes + frame_bytes > options_.QueueBytesMax(lane)) {
    ++counters.dropped_queue_full;
    return SendResult::kQueueFull;
  }
  std::string frame;
  frame.reserve(frame_bytes);
  frame.resize(kFrameHeaderBytes);
  CHECK(body.AppendToString(&frame));
  CHECK_EQ(frame.size(), frame_bytes);
  SealFrame(FrameType::kPeerMessage, &frame);
  link.queue.push_back(std::move(frame));
  link.queue_bytes += frame_bytes;
  ++counters.packets_queued;
  // The write happens when the loop reports the socket writable: every
  // packet queued before then (one Host step's worth) leaves in one writev.
  if (link.state == PeerState::kConnected) SetWriteInterest(link, true);
  return SendResult::kQueued;
}

TcpTransport::Link& TcpTransport::OpenLink(Peer& peer, Lane lane) {
  if (Link* link = peer.link(lane)) return *link;
  CHECK(lane == Lane::kBulk);
  peer.bulk = std::make_unique<Link>(&peer, lane);
  StartDial(*peer.bulk);
  return *peer.bulk;
}

// ---------------------------------------------------------------------------
// Dialing.

void TcpTransport::StartDial(Link& link) {
  CHECK(link.state == PeerState::kBackoff);
  CHECK_EQ(link.timer, 0u);
  CHECK(link.queue.empty());
  ++counters_.lane(link.lane).dials;
  link.state = PeerState::kConnecting;
  SocketOptions socket_options;
  socket_options.send_buffer_bytes = options_.socket_send_buffer_bytes;
  socket_options.receive_buffer_bytes = options_.socket_receive_buffer_bytes;
  absl::StatusOr<Dialing> dialing =
      StartConnect(link.peer->address, socket_options);
  if (!dialing.ok()) {
    CloseOutbound(link, CloseReason::kIoError, dialing.status().ToString());
    return;
  }
  if (dialing->connected) {
    OnConnected(link, std::move(dialing->fd));
    return;
  }
  link.dialing = std::move(dialing->fd);
  const absl::Status added = loop_->AddFd(
      link.dialing.get(), EventLoop::kWritable,
      [this, &link](uint32_t events) { OnDialReady(link, events); });
  if (!added.ok()) {
    CloseOutbound(link, CloseReason::kConnectionSetup, added.ToString());
    return;
  }
  // A connect to a host that drops SYNs would otherwise take the kernel's
  // two minutes of retries.
  link.timer = loop_->AddTimerAt(
      loop_->clock().NowMicros() + options_.connect_timeout_us, [this, &link] {
        link.timer = 0;
        CloseOutbound(link, CloseReason::kConnectTimeout,
                      absl::StrCat("no answer within ",
                                   options_.connect_timeout_us, " us"));
      });
}

void TcpTransport::OnDialReady(Link& link, uint32_t /*events*/) {
  CHECK(link.state == PeerState::kConnecting);
  // Writable, error or hang-up all end the connect; SO_ERROR says how.
  const absl::Status connected =
      FinishConnect(link.dialing.get(), link.peer->address);
  if (!connected.ok()) {
    CloseOutbound(link, CloseReason::kIoError, connected.ToString());
    return;
  }
  // The fd is re-registered by OnConnected under the Connection's callback.
  loop_->RemoveFd(link.dialing.get()).IgnoreError();
  OnConnected(link, std::move(link.dialing));
}

void TcpTransport::OnConnected(Link& link, UniqueFd fd) {
  CHECK(link.state == PeerState::kConnecting);
  CHECK(fd.valid());
  if (link.timer != 0) {
    loop_->CancelTimer(link.timer);
    link.timer = 0;
  }
  // A connect to a local port nobody listens on can complete with itself
  // (TCP simultaneous open); such a "peer" would read our own HELLO back
  // and hold the port the real peer needs to bind when it restarts.
  absl::StatusOr<bool> itself = IsConnectedToItself(fd.get());
  if (!itself.ok() || *itself) {
    link.dialing = std::move(fd);  // closed by CloseOutbound
    CloseOutbound(link, CloseReason::kIoError,
                  itself.ok() ? "connected to itself (nobody listens there)"
                              : itself.status().ToString());
    return;
  }
  absl::StatusOr<std::unique_ptr<Connection>> connection =
      factory_(std::move(fd), /*outbound=*/true, link.peer->address.ToString());
  if (!connection.ok()) {
    CloseOutbound(link, CloseReason::kConnectionSetup,
                  connection.status().ToString());
    return;
  }
  CHECK(*connection != nullptr);
  link.connection = std::move(*connection);
  link.state = PeerState::kConnected;
  link.connected_at_us = loop_->clock().NowMicros();
  ++counters_.lane(link.lane).connects;

  transport::Hello hello;
  hello.set_cluster_id(options_.cluster_id);
  hello.set_from(self().value());
  hello.set_to(link.peer->id.value());
  hello.set_protocol_version(kProtocolVersion);
  hello.set_min_cluster_version(options_.min_cluster_version);
  hello.set_lane(static_cast<transport::Lane>(link.lane));
  CHECK_EQ(link.front_written, 0u);
  link.queue.push_front(
      EncodeFrame(FrameType::kHello, hello.SerializeAsString()));
  link.hello_queued = true;

  // Readable too: nothing may arrive on an outbound connection but its end,
  // which is how a peer that refused our HELLO (or went away) shows.
  const absl::Status added = loop_->AddFd(
      link.connection->fd(), EventLoop::kReadable | EventLoop::kWritable,
      [this, &link](uint32_t events) { OnOutboundEvent(link, events); });
  if (!added.ok()) {
    // Not registered: CloseOutbound must not remove it.
    link.connection->Close();
    link.connection.reset();
    link.write_interest = false;
    CloseOutbound(link, CloseReason::kConnectionSetup, added.ToString());
    return;
  }
  link.write_interest = true;
  logger_->Info("node ", self().value(), " transport: connected to ",
                LinkName(link));
}

// ---------------------------------------------------------------------------
// An established outbound connection.

void TcpTransport::OnOutboundEvent(Link& link, uint32_t events) {
  CHECK(link.state == PeerState::kConnected);
  if ((events & (EventLoop::kReadable | EventLoop::kError |
                 EventLoop::kHangup)) != 0) {
    char byte[64];
    const IoResult read =
        link.connection->Read(absl::MakeSpan(byte, sizeof(byte)));
    switch (read.kind) {
      case IoResult::Kind::kWouldBlock:
        break;
      case IoResult::Kind::kOk:
        CloseOutbound(link, CloseReason::kUnexpectedFrame,
                      absl::StrCat(read.bytes,
                                   "+ bytes arrived on an outbound "
                                   "connection (messages are one-way)"));
        return;
      case IoResult::Kind::kEof:
        CloseOutbound(link, CloseReason::kPeerClosed,
                      "the peer closed the connection (if it keeps doing so "
                      "at once, it refuses our HELLO: see its log)");
        return;
      case IoResult::Kind::kError:
        CloseOutbound(link, CloseReason::kIoError, read.error.ToString());
        return;
    }
  }
  if ((events & EventLoop::kWritable) != 0) Flush(link);
}

void TcpTransport::Flush(Link& link) {
  CHECK(link.state == PeerState::kConnected);
  absl::string_view pieces[Connection::kWritePiecesMax];
  for (size_t writes = 0; !link.queue.empty() && writes < kWritesPerWakeMax;
       ++writes) {
    size_t count = 0;
    for (auto it = link.queue.begin();
         it != link.queue.end() && count < Connection::kWritePiecesMax;
         ++it, ++count) {
      pieces[count] = *it;
    }
    pieces[0].remove_prefix(link.front_written);
    const IoResult wrote =
        link.connection->Write(absl::MakeConstSpan(pieces, count));
    if (wrote.kind == IoResult::Kind::kWouldBlock) {
      if (!link.stalled_since_us.has_value()) {
        link.stalled_since_us = loop_->clock().NowMicros();
      }
      if (link.stall_timer == 0) {
        link.stall_timer = loop_->AddTimerAt(
            *link.stalled_since_us + options_.write_stall_timeout_us,
            [this, &link] { OnStallTimer(link); });
      }
      return;
    }
    if (wrote.kind != IoResult::Kind::kOk) {
      CloseOutbound(link, CloseReason::kIoError, wrote.error.ToString());
      return;
    }
    CHECK_GT(wrote.bytes, 0u);
    TcpTransportLaneCounters& counters = counters_.lane(link.lane);
    ++counters.writes;
    counters.bytes_written += wrote.bytes;
    link.stalled_since_us.reset();
    size_t left = wrote.bytes;
    while (left > 0) {
      CHECK(!link.queue.empty());
      const size_t front_left = link.queue.front().size() - link.front_written;
      if (left < front_left) {
        link.front_written += left;
        break;
      }
      left -= front_left;
      if (link.hello_queued) {
        link.hello_queued = false;
      } else {
        link.queue_bytes -= link.queue.front().size();
        ++counters.frames_written;
      }
      link.queue.pop_front();
      link.front_written = 0;
    }
  }
  // Every pass moved bytes (one that could not returned above): no stall.
  if (link.stall_timer != 0) {
    loop_->CancelTimer(link.stall_timer);
    link.stall_timer = 0;
  }
  // What is left goes when the loop reports the socket writable again
  // (level-triggered: next iteration).
  if (link.queue.empty()) SetWriteInterest(link, false);
}

void TcpTransport::OnStallTimer(Link& link) {
  link.stall_timer = 0;
  CHECK(link.state == PeerState::kConnected);
  if (!link.stalled_since_us.has_value()) return;  // it moved since
  const MonoMicros now = loop_->clock().NowMicros();
  const MonoMicros deadline =
      *link.stalled_since_us + options_.write_stall_timeout_us;
  if (now < deadline) {
    // Progress, then a new stall since the timer was armed.
    link.stall_timer =
        loop_->AddTimerAt(deadline, [this, &link] { OnStallTimer(link); });
    return;
  }
  CloseOutbound(
      link, CloseReason::kWriteStalled,
      absl::StrCat("the socket took no byte for ", now - *link.stalled_since_us,
                   " us with ", link.packets(), " packets queued (limit ",
                   options_.write_stall_timeout_us, " us)"));
}

void TcpTransport::SetWriteInterest(Link& link, bool on) {
  CHECK(link.state == PeerState::kConnected);
  if (link.write_interest == on) return;
  const absl::Status modified =
      loop_->ModifyFd(link.connection->fd(),
                      EventLoop::kReadable | (on ? EventLoop::kWritable : 0u));
  if (!modified.ok()) {
    CloseOutbound(link, CloseReason::kIoError, modified.ToString());
    return;
  }
  link.write_interest = on;
}

// ---------------------------------------------------------------------------
// Ending a link, and backoff.

void TcpTransport::CloseOutbound(Link& link, CloseReason reason,
                                 absl::string_view detail, bool reconnect) {
  CHECK(link.state != PeerState::kBackoff);
  const bool was_connected = link.state == PeerState::kConnected;
  const MonoMicros now = loop_->clock().NowMicros();
  CountClose(reason);
  // A peer that is down fails every attempt; only the first failure after
  // a working link is worth a warning.
  if (was_connected || link.failures == 0 || reason != CloseReason::kIoError) {
    LogClose(reason,
             absl::StrCat(was_connected ? "connection" : "connect attempt",
                          " to ", LinkName(link)),
             detail);
  } else {
    logger_->Debug("node ", self().value(), " transport: connect attempt ",
                   link.failures + 1, " to ", LinkName(link),
                   " failed: ", detail);
  }
  if (link.connection != nullptr) {
    if (loop_->HasFd(link.connection->fd())) {
      loop_->RemoveFd(link.connection->fd()).IgnoreError();
    }
    link.connection->Close();
    link.connection.reset();
  }
  if (link.dialing.valid()) {
    if (loop_->HasFd(link.dialing.get())) {
      loop_->RemoveFd(link.dialing.get()).IgnoreError();
    }
    link.dialing.Reset();
  }
  CancelLinkTimers(link);
  counters_.lane(link.lane).dropped_on_disconnect += link.packets();
  link.queue.clear();
  link.queue_bytes = 0;
  link.front_written = 0;
  link.hello_queued = false;
  link.write_interest = false;
  link.stalled_since_us.reset();
  link.state = PeerState::kBackoff;
  // A link that held for a whole maximum backoff was a working one: start
  // the backoff over. One that broke sooner (a peer that accepts, then
  // refuses our HELLO) keeps growing it.
  if (was_connected &&
      now - link.connected_at_us >= options_.reconnect_backoff_max_us) {
    link.failures = 0;
  }
  if (reconnect) ArmBackoff(link);
}

void TcpTransport::StopLink(Link& link, CloseReason reason,
                            absl::string_view detail) {
  if (link.state == PeerState::kBackoff) {
    CancelLinkTimers(link);
  } else {
    CloseOutbound(link, reason, detail, /*reconnect=*/false);
  }
}

void TcpTransport::ArmBackoff(Link& link) {
  CHECK(link.state == PeerState::kBackoff);
  CHECK_EQ(link.timer, 0u);
  // min * 2^failures, capped at max (doubling stops at the cap, so it
  // cannot overflow).
  int64_t delay_us = options_.reconnect_backoff_min_us;
  for (uint32_t i = 0;
       i < link.failures && delay_us < options_.reconnect_backoff_max_us; ++i) {
    delay_us *= 2;
  }
  delay_us = std::min(delay_us, options_.reconnect_backoff_max_us);
  // "Equal jitter": half fixed, half random, so retries never come sooner
  // than half the backoff and nodes that lost a peer together spread out.
  const auto jittered_us = static_cast<int64_t>(
      rng_.Range(static_cast<uint64_t>(delay_us / 2),
                 static_cast<uint64_t>(delay_us)));
  if (link.failures < UINT32_MAX) ++link.failures;
  link.timer = loop_->AddTimerAt(loop_->clock().NowMicros() + jittered_us,
                                 [this, &link] {
                                   link.timer = 0;
                                   StartDial(link);
                                 });
}

void TcpTransport::CancelLinkTimers(Link& link) {
  if (link.timer != 0) {
    loop_->CancelTimer(link.timer);
    link.timer = 0;
  }
  if (link.stall_timer != 0) {
    loop_->CancelTimer(link.stall_timer);
    link.stall_timer = 0;
  }
}

}  // namespace blixard::net
