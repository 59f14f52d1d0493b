// FaultProxy: a TCP proxy for one directed peer link of a multi-process test
// cluster (ARCHITECTURE.md, "Testing the real thing": a fault proxy on every
// peer link). Node `from` dials the proxy instead of node `to`'s peer port;
// for each accepted connection the proxy dials `to` and forwards bytes both
// ways, applying the link's faults as it goes.
//
// Faults (LinkFaults, changeable while connections are open):
//   - blackhole per direction: bytes read in a blocked direction are read
//     and discarded (the sender sees a healthy connection that delivers
//     nothing, as in a partition); bytes already queued in it are discarded
//     too. A TCP stream cannot lose single bytes without corrupting the
//     receiver's framing, so a connection that lost bytes in a direction is
//     reset (both sockets closed) as soon as that direction passes again:
//     the nodes see a partition, then a broken connection, and reconnect.
//   - delay with jitter: each chunk read becomes writable at
//     max(previous chunk's release, now + delay + U[0, jitter]), seeded, so
//     bytes of one direction never reorder.
//   - "drop": TCP cannot drop one message, so loss is modelled as a reset:
//     with reset_per_million, each chunk read resets its connection with
//     that chance. Per-byte loss is never modelled.
//   - ResetAll: closes every connection now (the nodes reconnect).
//
// Buffers are bounded (kDirectionBytesMax per direction): when one is full
// the proxy stops reading that direction's source, so TCP's flow control
// pushes back on the sender. A connection ends (both sockets closed) on EOF
// or an error on either side; half-closes are not forwarded (the nodes
// never half-close). A target that refuses the dial closes the accepted
// connection, as the node itself would have been refused.
//
// Thread: the loop's thread only, like everything on an EventLoop. Test-only
// code (FaultNetwork runs proxies on a thread of their own).
#ifndef BLIXARD_NET_TESTING_FAULT_PROXY_H_
#define BLIXARD_NET_TESTING_FAULT_PROXY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/base/rng.h"
#include "core/env.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"
#include "net/transport/socket.h"

namespace blixard::net::testing {

struct LinkFaults {
  bool forward_pass = true;   // bytes from the dialer (node `from`) to the target
  bool backward_pass = true;  // bytes from the target back to the dialer
  int64_t delay_us = 0;       // REQUIRES: 0..kDelayMaxUs
  int64_t jitter_us = 0;      // REQUIRES: 0..kDelayMaxUs
  uint32_t reset_per_million = 0;  // REQUIRES: <= 1'000'000
};

struct FaultProxyCounters {
  uint64_t accepted = 0;
  uint64_t dial_failures = 0;
  uint64_t bytes_forwarded = 0;  // written to the other side
  uint64_t bytes_dropped = 0;    // discarded by a blackhole
  uint64_t resets = 0;           // connections the proxy closed on purpose
};

class FaultProxy {
 public:
  static constexpr size_t kDirectionBytesMax = 4 << 20;  // > one 1 MiB snapshot chunk
  static constexpr size_t kReadChunkBytes = 64 * 1024;
  static constexpr size_t kAcceptsPerWakeMax = 16;
  static constexpr size_t kConnectionsMax = 64;  // a node dials a peer on 2 lanes
  static constexpr int64_t kDelayMaxUs = 10 * kMicrosPerSecond;

  // Listens on 127.0.0.1 (an ephemeral port) and forwards to `target`.
  // Errors: ListenTcp's and AddFd's. REQUIRES: `loop` outlives the proxy;
  // called on its thread.
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Create(EventLoop* loop,
                                                            SocketAddress target,
                                                            uint64_t seed);
  // Closes the listener and every connection. REQUIRES: loop thread.
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const { return port_; }
  // Applies `faults` from now on (see the file comment). CHECKs REQUIRES.
  void SetFaults(const LinkFaults& faults);
  const LinkFaults& faults() const { return faults_; }
  // Closes every open connection now.
  void ResetAll();
  size_t connection_count() const { return connections_.size(); }
  const FaultProxyCounters& counters() const { return counters_; }

  void CheckInvariants() const;

 private:
  struct Chunk {
    MonoMicros release = 0;
    std::string bytes;
    size_t offset = 0;  // bytes already written
  };
  // One direction of one connection: bytes read from its source, waiting
  // for their release time or for the sink to take them.
  struct Direction {
    std::deque<Chunk> queue;
    size_t queued_bytes = 0;
    MonoMicros last_release = 0;
    bool lost_bytes = false;  // framing is broken: reset when it passes again
  };
  struct Connection {
    UniqueFd down;  // accepted from the dialer
    UniqueFd up;    // dialed to the target
    bool up_connected = false;
    uint32_t down_interest = 0;
    uint32_t up_interest = 0;
    Direction forward;   // down -> up
    Direction backward;  // up -> down
    EventLoop::TimerHandle timer = 0;
    MonoMicros timer_at = 0;
  };

  FaultProxy(EventLoop* loop, SocketAddress target, uint64_t seed, UniqueFd listener,
             uint16_t port);

  void OnAccept();
  void OnEvent(uint64_t id, bool up_side, uint32_t events);
  void OnTimer(uint64_t id);
  // Reads what `fd` has into `direction` (or discards it); false when the
  // connection was closed.
  bool ReadInto(uint64_t id, int fd, Direction& direction, bool passes);
  // Writes the released head of `direction` to `fd`; false on a write error.
  bool Flush(int fd, Direction& direction);
  // Recomputes both fds' interest and the release timer.
  void Update(uint64_t id, Connection& c);
  void Close(uint64_t id, bool on_purpose);
  void Discard(Direction& direction);

  EventLoop* const loop_;
  const SocketAddress target_;
  Rng rng_;
  UniqueFd listener_;
  const uint16_t port_;
  LinkFaults faults_;
  FaultProxyCounters counters_;
  std::map<uint64_t, Connection> connections_;
  uint64_t next_id_ = 1;
  std::unique_ptr<char[]> read_buffer_;
};

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_TESTING_FAULT_PROXY_H_
