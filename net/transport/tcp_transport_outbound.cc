// TcpTransport, outbound: the per-peer queue, dialing with backoff, the
// HELLO, gathered writes, and the write-stall check (tcp_transport.h).
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
    NodeId to, const transport::PeerMessage& body) {
  CHECK(loop_->InLoopThread());
  auto it = peers_.find(to);
  if (it == peers_.end() || it->second->state == PeerState::kBackoff) {
    ++counters_.dropped_unreachable;
    return SendResult::kUnreachable;
  }
  Peer& peer = *it->second;
  // Cheap checks first: a full queue should not cost a serialization.
  if (peer.packets() >= options_.queue_packets_max) {
    ++counters_.dropped_queue_full;
    return SendResult::kQueueFull;
  }
  const size_t body_bytes = body.ByteSizeLong();
  if (body_bytes > options_.frame_body_bytes_max) {
    ++counters_.dropped_too_large;
    logger_->Error("node ", self().value(), " transport: dropped a ",
                   body.has_raft() ? "raft" : "bytes", " packet for peer ",
                   to.value(), ": ", body_bytes, " body bytes exceed the ",
                   options_.frame_body_bytes_max, "-byte frame limit");
    return SendResult::kQueueFull;
  }
  const size_t frame_bytes = FrameBytes(body_bytes);
  if (peer.queue_bytes + frame_bytes > options_.queue_bytes_max) {
    ++counters_.dropped_queue_full;
    return SendResult::kQueueFull;
  }
  std::string frame;
  frame.reserve(frame_bytes);
  frame.resize(kFrameHeaderBytes);
  CHECK(body.AppendToString(&frame));
  CHECK_EQ(frame.size(), frame_bytes);
  SealFrame(FrameType::kPeerMessage, &frame);
  peer.queue.push_back(std::move(frame));
  peer.queue_bytes += frame_bytes;
  ++counters_.packets_queued;
  // The write happens when the loop reports the socket writable: every
  // packet queued before then (one Host step's worth) leaves in one writev.
  if (peer.state == PeerState::kConnected) SetWriteInterest(peer, true);
  return SendResult::kQueued;
}

// ---------------------------------------------------------------------------
// Dialing.

void TcpTransport::StartDial(Peer& peer) {
  CHECK(peer.state == PeerState::kBackoff);
  CHECK_EQ(peer.timer, 0u);
  CHECK(peer.queue.empty());
  ++counters_.dials;
  peer.state = PeerState::kConnecting;
  SocketOptions socket_options;
  socket_options.send_buffer_bytes = options_.socket_send_buffer_bytes;
  socket_options.receive_buffer_bytes = options_.socket_receive_buffer_bytes;
  absl::StatusOr<Dialing> dialing = StartConnect(peer.address, socket_options);
  if (!dialing.ok()) {
    CloseOutbound(peer, CloseReason::kIoError, dialing.status().ToString());
    return;
  }
  if (dialing->connected) {
    OnConnected(peer, std::move(dialing->fd));
    return;
  }
  peer.dialing = std::move(dialing->fd);
  const absl::Status added =
      loop_->AddFd(peer.dialing.get(), EventLoop::kWritable,
                   [this, &peer](uint32_t events) { OnDialReady(peer, events); });
  if (!added.ok()) {
    CloseOutbound(peer, CloseReason::kConnectionSetup, added.ToString());
    return;
  }
  // A connect to a host that drops SYNs would otherwise take the kernel's
  // two minutes of retries.
  peer.timer = loop_->AddTimerAt(
      loop_->clock().NowMicros() + options_.connect_timeout_us, [this, &peer] {
        peer.timer = 0;
        CloseOutbound(peer, CloseReason::kConnectTimeout,
                      absl::StrCat("no answer within ",
                                   options_.connect_timeout_us, " us"));
      });
}

void TcpTransport::OnDialReady(Peer& peer, uint32_t /*events*/) {
  CHECK(peer.state == PeerState::kConnecting);
  // Writable, error or hang-up all end the connect; SO_ERROR says how.
  const absl::Status connected =
      FinishConnect(peer.dialing.get(), peer.address);
  if (!connected.ok()) {
    CloseOutbound(peer, CloseReason::kIoError, connected.ToString());
    return;
  }
  // The fd is re-registered by OnConnected under the Connection's callback.
  loop_->RemoveFd(peer.dialing.get()).IgnoreError();
  OnConnected(peer, std::move(peer.dialing));
}

void TcpTransport::OnConnected(Peer& peer, UniqueFd fd) {
  CHECK(peer.state == PeerState::kConnecting);
  CHECK(fd.valid());
  if (peer.timer != 0) {
    loop_->CancelTimer(peer.timer);
    peer.timer = 0;
  }
  // A connect to a local port nobody listens on can complete with itself
  // (TCP simultaneous open); such a "peer" would read our own HELLO back
  // and hold the port the real peer needs to bind when it restarts.
  absl::StatusOr<bool> itself = IsConnectedToItself(fd.get());
  if (!itself.ok() || *itself) {
    peer.dialing = std::move(fd);  // closed by CloseOutbound
    CloseOutbound(peer, CloseReason::kIoError,
                  itself.ok() ? "connected to itself (nobody listens there)"
                              : itself.status().ToString());
    return;
  }
  absl::StatusOr<std::unique_ptr<Connection>> connection =
      factory_(std::move(fd), /*outbound=*/true, peer.address.ToString());
  if (!connection.ok()) {
    CloseOutbound(peer, CloseReason::kConnectionSetup,
                  connection.status().ToString());
    return;
  }
  CHECK(*connection != nullptr);
  peer.connection = std::move(*connection);
  peer.state = PeerState::kConnected;
  peer.connected_at_us = loop_->clock().NowMicros();
  ++counters_.connects;

  transport::Hello hello;
  hello.set_cluster_id(options_.cluster_id);
  hello.set_from(self().value());
  hello.set_to(peer.id.value());
  hello.set_protocol_version(kProtocolVersion);
  hello.set_min_cluster_version(options_.min_cluster_version);
  CHECK_EQ(peer.front_written, 0u);
  peer.queue.push_front(
      EncodeFrame(FrameType::kHello, hello.SerializeAsString()));
  peer.hello_queued = true;

  // Readable too: nothing may arrive on an outbound connection but its end,
  // which is how a peer that refused our HELLO (or went away) shows.
  const absl::Status added = loop_->AddFd(
      peer.connection->fd(), EventLoop::kReadable | EventLoop::kWritable,
      [this, &peer](uint32_t events) { OnOutboundEvent(peer, events); });
  if (!added.ok()) {
    // Not registered: CloseOutbound must not remove it.
    peer.connection->Close();
    peer.connection.reset();
    peer.write_interest = false;
    CloseOutbound(peer, CloseReason::kConnectionSetup, added.ToString());
    return;
  }
  peer.write_interest = true;
  logger_->Info("node ", self().value(), " transport: connected to peer ",
                peer.id.value(), " at ", peer.address.ToString());
}

// ---------------------------------------------------------------------------
// An established outbound connection.

void TcpTransport::OnOutboundEvent(Peer& peer, uint32_t events) {
  CHECK(peer.state == PeerState::kConnected);
  if ((events & (EventLoop::kReadable | EventLoop::kError |
                 EventLoop::kHangup)) != 0) {
    char byte[64];
    const IoResult read =
        peer.connection->Read(absl::MakeSpan(byte, sizeof(byte)));
    switch (read.kind) {
      case IoResult::Kind::kWouldBlock:
        break;
      case IoResult::Kind::kOk:
        CloseOutbound(peer, CloseReason::kUnexpectedFrame,
                      absl::StrCat(read.bytes,
                                   "+ bytes arrived on an outbound "
                                   "connection (messages are one-way)"));
        return;
      case IoResult::Kind::kEof:
        CloseOutbound(peer, CloseReason::kPeerClosed,
                      "the peer closed the connection (if it keeps doing so "
                      "at once, it refuses our HELLO: see its log)");
        return;
      case IoResult::Kind::kError:
        CloseOutbound(peer, CloseReason::kIoError, read.error.ToString());
        return;
    }
  }
  if ((events & EventLoop::kWritable) != 0) Flush(peer);
}

void TcpTransport::Flush(Peer& peer) {
  CHECK(peer.state == PeerState::kConnected);
  absl::string_view pieces[Connection::kWritePiecesMax];
  // Bounded: every pass writes at least one byte of a bounded queue, or
  // returns.
  while (!peer.queue.empty()) {
    size_t count = 0;
    for (auto it = peer.queue.begin();
         it != peer.queue.end() && count < Connection::kWritePiecesMax;
         ++it, ++count) {
      pieces[count] = *it;
    }
    pieces[0].remove_prefix(peer.front_written);
    const IoResult wrote =
        peer.connection->Write(absl::MakeConstSpan(pieces, count));
    if (wrote.kind == IoResult::Kind::kWouldBlock) {
      if (!peer.stalled_since_us.has_value()) {
        peer.stalled_since_us = loop_->clock().NowMicros();
      }
      if (peer.stall_timer == 0) {
        peer.stall_timer = loop_->AddTimerAt(
            *peer.stalled_since_us + options_.write_stall_timeout_us,
            [this, &peer] { OnStallTimer(peer); });
      }
      return;
    }
    if (wrote.kind != IoResult::Kind::kOk) {
      CloseOutbound(peer, CloseReason::kIoError, wrote.error.ToString());
      return;
    }
    CHECK_GT(wrote.bytes, 0u);
    ++counters_.writes;
    counters_.bytes_written += wrote.bytes;
    peer.stalled_since_us.reset();
    size_t left = wrote.bytes;
    while (left > 0) {
      CHECK(!peer.queue.empty());
      const size_t front_left = peer.queue.front().size() - peer.front_written;
      if (left < front_left) {
        peer.front_written += left;
        break;
      }
      left -= front_left;
      if (peer.hello_queued) {
        peer.hello_queued = false;
      } else {
        peer.queue_bytes -= peer.queue.front().size();
        ++counters_.frames_written;
      }
      peer.queue.pop_front();
      peer.front_written = 0;
    }
  }
  if (peer.stall_timer != 0) {
    loop_->CancelTimer(peer.stall_timer);
    peer.stall_timer = 0;
  }
  SetWriteInterest(peer, false);
}

void TcpTransport::OnStallTimer(Peer& peer) {
  peer.stall_timer = 0;
  CHECK(peer.state == PeerState::kConnected);
  if (!peer.stalled_since_us.has_value()) return;  // it moved since
  const MonoMicros now = loop_->clock().NowMicros();
  const MonoMicros deadline =
      *peer.stalled_since_us + options_.write_stall_timeout_us;
  if (now < deadline) {
    // Progress, then a new stall since the timer was armed.
    peer.stall_timer =
        loop_->AddTimerAt(deadline, [this, &peer] { OnStallTimer(peer); });
    return;
  }
  CloseOutbound(peer, CloseReason::kWriteStalled,
                absl::StrCat("the socket took no byte for ",
                             now - *peer.stalled_since_us, " us with ",
                             peer.packets(), " packets queued (limit ",
                             options_.write_stall_timeout_us, " us)"));
}

void TcpTransport::SetWriteInterest(Peer& peer, bool on) {
  CHECK(peer.state == PeerState::kConnected);
  if (peer.write_interest == on) return;
  const absl::Status modified = loop_->ModifyFd(
      peer.connection->fd(),
      EventLoop::kReadable | (on ? EventLoop::kWritable : 0u));
  if (!modified.ok()) {
    CloseOutbound(peer, CloseReason::kIoError, modified.ToString());
    return;
  }
  peer.write_interest = on;
}

// ---------------------------------------------------------------------------
// Ending a link, and backoff.

void TcpTransport::CloseOutbound(Peer& peer, CloseReason reason,
                                 absl::string_view detail, bool reconnect) {
  CHECK(peer.state != PeerState::kBackoff);
  const bool was_connected = peer.state == PeerState::kConnected;
  const MonoMicros now = loop_->clock().NowMicros();
  CountClose(reason);
  // A peer that is down fails every attempt; only the first failure after
  // a working link is worth a warning.
  if (was_connected || peer.failures == 0 || reason != CloseReason::kIoError) {
    LogClose(reason,
             absl::StrCat(was_connected ? "connection" : "connect attempt",
                          " to peer ", peer.id.value(), " at ",
                          peer.address.ToString()),
             detail);
  } else {
    logger_->Debug("node ", self().value(), " transport: connect attempt ",
                   peer.failures + 1, " to peer ", peer.id.value(),
                   " failed: ", detail);
  }
  if (peer.connection != nullptr) {
    if (loop_->HasFd(peer.connection->fd())) {
      loop_->RemoveFd(peer.connection->fd()).IgnoreError();
    }
    peer.connection->Close();
    peer.connection.reset();
  }
  if (peer.dialing.valid()) {
    if (loop_->HasFd(peer.dialing.get())) {
      loop_->RemoveFd(peer.dialing.get()).IgnoreError();
    }
    peer.dialing.Reset();
  }
  CancelPeerTimers(peer);
  counters_.dropped_on_disconnect += peer.packets();
  peer.queue.clear();
  peer.queue_bytes = 0;
  peer.front_written = 0;
  peer.hello_queued = false;
  peer.write_interest = false;
  peer.stalled_since_us.reset();
  peer.state = PeerState::kBackoff;
  // A link that held for a whole maximum backoff was a working one: start
  // the backoff over. One that broke sooner (a peer that accepts, then
  // refuses our HELLO) keeps growing it.
  if (was_connected &&
      now - peer.connected_at_us >= options_.reconnect_backoff_max_us) {
    peer.failures = 0;
  }
  if (reconnect) ArmBackoff(peer);
}

void TcpTransport::ArmBackoff(Peer& peer) {
  CHECK(peer.state == PeerState::kBackoff);
  CHECK_EQ(peer.timer, 0u);
  // min * 2^failures, capped at max (doubling stops at the cap, so it
  // cannot overflow).
  int64_t delay_us = options_.reconnect_backoff_min_us;
  for (uint32_t i = 0;
       i < peer.failures && delay_us < options_.reconnect_backoff_max_us; ++i) {
    delay_us *= 2;
  }
  delay_us = std::min(delay_us, options_.reconnect_backoff_max_us);
  // "Equal jitter": half fixed, half random, so retries never come sooner
  // than half the backoff and nodes that lost a peer together spread out.
  const auto jittered_us = static_cast<int64_t>(
      rng_.Range(static_cast<uint64_t>(delay_us / 2),
                 static_cast<uint64_t>(delay_us)));
  if (peer.failures < UINT32_MAX) ++peer.failures;
  peer.timer = loop_->AddTimerAt(loop_->clock().NowMicros() + jittered_us,
                                 [this, &peer] {
                                   peer.timer = 0;
                                   StartDial(peer);
                                 });
}

void TcpTransport::CancelPeerTimers(Peer& peer) {
  if (peer.timer != 0) {
    loop_->CancelTimer(peer.timer);
    peer.timer = 0;
  }
  if (peer.stall_timer != 0) {
    loop_->CancelTimer(peer.stall_timer);
    peer.stall_timer = 0;
  }
}

}  // namespace blixard::net
