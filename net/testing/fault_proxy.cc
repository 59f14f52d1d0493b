#include "net/testing/fault_proxy.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "core/base/check.h"

namespace blixard::net::testing {

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Create(EventLoop* loop,
                                                               SocketAddress target,
                                                               uint64_t seed) {
  CHECK(loop != nullptr);
  CHECK(loop->InLoopThread());
  absl::StatusOr<UniqueFd> listener = ListenTcp({"127.0.0.1", 0}, /*backlog=*/64);
  if (!listener.ok()) return listener.status();
  absl::StatusOr<uint16_t> port = LocalPort(listener->get());
  if (!port.ok()) return port.status();
  std::unique_ptr<FaultProxy> proxy(
      new FaultProxy(loop, std::move(target), seed, *std::move(listener), *port));
  FaultProxy* raw = proxy.get();
  absl::Status added =
      loop->AddFd(raw->listener_.get(), EventLoop::kReadable, [raw](uint32_t) { raw->OnAccept(); });
  if (!added.ok()) return added;
  return proxy;
}

FaultProxy::FaultProxy(EventLoop* loop, SocketAddress target, uint64_t seed, UniqueFd listener,
                       uint16_t port)
    : loop_(loop),
      target_(std::move(target)),
      rng_(seed),
      listener_(std::move(listener)),
      port_(port),
      read_buffer_(new char[kReadChunkBytes]) {}

FaultProxy::~FaultProxy() {
  CHECK(loop_->InLoopThread());
  while (!connections_.empty()) Close(connections_.begin()->first, /*on_purpose=*/false);
  if (loop_->HasFd(listener_.get())) (void)loop_->RemoveFd(listener_.get());
}

void FaultProxy::SetFaults(const LinkFaults& faults) {
  CHECK(faults.delay_us >= 0 && faults.delay_us <= kDelayMaxUs) << faults.delay_us;
  CHECK(faults.jitter_us >= 0 && faults.jitter_us <= kDelayMaxUs) << faults.jitter_us;
  CHECK_LE(faults.reset_per_million, 1'000'000u);
  faults_ = faults;
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : connections_) ids.push_back(id);
  for (uint64_t id : ids) {
    Connection& c = connections_.at(id);
    // A direction that passes again after losing bytes would hand the
    // receiver the tail of one frame glued to the head of another.
    if ((faults_.forward_pass && c.forward.lost_bytes) ||
        (faults_.backward_pass && c.backward.lost_bytes)) {
      Close(id, /*on_purpose=*/true);
      continue;
    }
    // What waits in a direction that is now blocked is lost with it.
    if (!faults_.forward_pass) Discard(c.forward);
    if (!faults_.backward_pass) Discard(c.backward);
    Update(id, c);
  }
}

void FaultProxy::ResetAll() {
  while (!connections_.empty()) Close(connections_.begin()->first, /*on_purpose=*/true);
}

void FaultProxy::Discard(Direction& direction) {
  if (direction.queue.empty()) return;
  counters_.bytes_dropped += direction.queued_bytes;
  direction.queue.clear();
  direction.queued_bytes = 0;
  direction.lost_bytes = true;
}

void FaultProxy::OnAccept() {
  for (size_t n = 0; n < kAcceptsPerWakeMax; ++n) {
    absl::StatusOr<std::optional<AcceptedSocket>> accepted = AcceptTcp(listener_.get());
    if (!accepted.ok() || !accepted->has_value()) return;
    ++counters_.accepted;
    if (connections_.size() >= kConnectionsMax) continue;  // closed by the UniqueFd
    (void)SetNoDelay((*accepted)->fd.get());
    absl::StatusOr<Dialing> dialing = StartConnect(target_);
    if (!dialing.ok()) {
      ++counters_.dial_failures;
      continue;  // the accepted socket closes: the dialer sees a refusal
    }
    const uint64_t id = next_id_++;
    Connection& c = connections_[id];
    c.down = std::move((*accepted)->fd);
    c.up = std::move(dialing->fd);
    c.up_connected = dialing->connected;
    // Registered quiet; Update sets the real interest.
    absl::Status down_added = loop_->AddFd(
        c.down.get(), 0, [this, id](uint32_t events) { OnEvent(id, false, events); });
    absl::Status up_added =
        down_added.ok() ? loop_->AddFd(c.up.get(), 0,
                                       [this, id](uint32_t events) { OnEvent(id, true, events); })
                        : down_added;
    if (!up_added.ok()) {
      Close(id, /*on_purpose=*/false);
      continue;
    }
    Update(id, c);
  }
}

void FaultProxy::OnEvent(uint64_t id, bool up_side, uint32_t events) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = it->second;
  if (up_side && !c.up_connected) {
    if ((events & (EventLoop::kWritable | EventLoop::kError | EventLoop::kHangup)) == 0) return;
    if (!FinishConnect(c.up.get(), target_).ok()) {
      ++counters_.dial_failures;
      Close(id, /*on_purpose=*/false);
      return;
    }
    c.up_connected = true;
    (void)SetNoDelay(c.up.get());
    Update(id, c);
    return;
  }
  // A hang-up is reported whatever the interest (even with a full buffer
  // and no read interest), so it ends the connection at once.
  if ((events & (EventLoop::kError | EventLoop::kHangup)) != 0) {
    Close(id, /*on_purpose=*/false);
    return;
  }
  if ((events & EventLoop::kReadable) != 0) {
    Direction& into = up_side ? c.backward : c.forward;
    const bool passes = up_side ? faults_.backward_pass : faults_.forward_pass;
    if (!ReadInto(id, up_side ? c.up.get() : c.down.get(), into, passes)) return;
  }
  if (!Flush(c.down.get(), c.backward) || (c.up_connected && !Flush(c.up.get(), c.forward))) {
    Close(id, /*on_purpose=*/false);
    return;
  }
  Update(id, c);
}

void FaultProxy::OnTimer(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = it->second;
  c.timer = 0;
  if (!Flush(c.down.get(), c.backward) || (c.up_connected && !Flush(c.up.get(), c.forward))) {
    Close(id, /*on_purpose=*/false);
    return;
  }
  Update(id, c);
}

bool FaultProxy::ReadInto(uint64_t id, int fd, Direction& direction, bool passes) {
  // One read per wake: level triggering brings us back while more waits,
  // and the other connections get their turn.
  const size_t room = kDirectionBytesMax - std::min(kDirectionBytesMax, direction.queued_bytes);
  const size_t want = passes ? std::min(room, kReadChunkBytes) : kReadChunkBytes;
  if (want == 0) return true;
  const ssize_t n = ::read(fd, read_buffer_.get(), want);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
  if (n <= 0) {
    Close(id, /*on_purpose=*/false);
    return false;
  }
  const size_t count = static_cast<size_t>(n);
  if (!passes) {
    counters_.bytes_dropped += count;
    direction.lost_bytes = true;
    return true;
  }
  if (faults_.reset_per_million > 0 && rng_.Chance(faults_.reset_per_million, 1'000'000)) {
    Close(id, /*on_purpose=*/true);
    return false;
  }
  const MonoMicros now = loop_->clock().NowMicros();
  int64_t delay = faults_.delay_us;
  if (faults_.jitter_us > 0) delay += static_cast<int64_t>(rng_.Range(0, static_cast<uint64_t>(faults_.jitter_us)));
  Chunk chunk;
  chunk.release = std::max(direction.last_release, now + delay);
  chunk.bytes.assign(read_buffer_.get(), count);
  direction.last_release = chunk.release;
  direction.queued_bytes += count;
  direction.queue.push_back(std::move(chunk));
  return true;
}

bool FaultProxy::Flush(int fd, Direction& direction) {
  const MonoMicros now = loop_->clock().NowMicros();
  while (!direction.queue.empty() && direction.queue.front().release <= now) {
    Chunk& head = direction.queue.front();
    const ssize_t n = ::send(fd, head.bytes.data() + head.offset, head.bytes.size() - head.offset,
                             MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    const size_t count = static_cast<size_t>(n);
    head.offset += count;
    direction.queued_bytes -= count;
    counters_.bytes_forwarded += count;
    if (head.offset < head.bytes.size()) return true;  // the socket is full
    direction.queue.pop_front();
  }
  return true;
}

void FaultProxy::Update(uint64_t id, Connection& c) {
  const MonoMicros now = loop_->clock().NowMicros();
  auto due = [now](const Direction& d) { return !d.queue.empty() && d.queue.front().release <= now; };
  auto room = [](const Direction& d) { return d.queued_bytes < kDirectionBytesMax; };
  const uint32_t down = (room(c.forward) ? EventLoop::kReadable : 0u) |
                        (due(c.backward) ? EventLoop::kWritable : 0u);
  const uint32_t up = !c.up_connected ? EventLoop::kWritable
                                      : (room(c.backward) ? EventLoop::kReadable : 0u) |
                                            (due(c.forward) ? EventLoop::kWritable : 0u);
  if (down != c.down_interest || up != c.up_interest) {
    if (!loop_->ModifyFd(c.down.get(), down).ok() || !loop_->ModifyFd(c.up.get(), up).ok()) {
      Close(id, /*on_purpose=*/false);
      return;
    }
    c.down_interest = down;
    c.up_interest = up;
  }
  // The earliest chunk still held back by a delay.
  MonoMicros next = 0;
  for (const Direction* d : {&c.forward, &c.backward}) {
    if (!d->queue.empty() && d->queue.front().release > now) {
      next = next == 0 ? d->queue.front().release : std::min(next, d->queue.front().release);
    }
  }
  if (next != 0 && (c.timer == 0 || c.timer_at != next)) {
    if (c.timer != 0) loop_->CancelTimer(c.timer);
    c.timer = loop_->AddTimerAt(next, [this, id] { OnTimer(id); });
    c.timer_at = next;
  }
}

void FaultProxy::Close(uint64_t id, bool on_purpose) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = it->second;
  if (c.timer != 0) loop_->CancelTimer(c.timer);
  if (c.down.valid() && loop_->HasFd(c.down.get())) (void)loop_->RemoveFd(c.down.get());
  if (c.up.valid() && loop_->HasFd(c.up.get())) (void)loop_->RemoveFd(c.up.get());
  if (on_purpose) ++counters_.resets;
  connections_.erase(it);  // the UniqueFds close both sockets
}

void FaultProxy::CheckInvariants() const {
  CHECK_LE(connections_.size(), kConnectionsMax);
  for (const auto& [id, c] : connections_) {
    CHECK_LT(id, next_id_);
    for (const Direction* d : {&c.forward, &c.backward}) {
      size_t bytes = 0;
      for (const Chunk& chunk : d->queue) bytes += chunk.bytes.size() - chunk.offset;
      CHECK_EQ(bytes, d->queued_bytes);
    }
  }
}

}  // namespace blixard::net::testing
