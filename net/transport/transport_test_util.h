// Test helpers for the peer transport: a loop that runs until a condition
// holds (bounded, never a sleep), transports with test options, raw peer
// sockets that speak (or garble) the protocol by hand, and frame builders.
//
// Thread: the test's (the loop's) thread.
#ifndef BLIXARD_NET_TRANSPORT_TRANSPORT_TEST_UTIL_H_
#define BLIXARD_NET_TRANSPORT_TRANSPORT_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/base/logger.h"
#include "core/env.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"
#include "net/transport/tcp_transport.h"

namespace blixard::net::testing {

inline constexpr uint64_t kTestClusterId = 0xc1c1c1c1c1c1c1c1ULL;

// Bounds every wait: a transport that never gets there fails the test
// instead of hanging it. Generous: nothing here measures speed.
inline constexpr absl::Duration kPatience = absl::Seconds(20);

// A new loop (CHECKs that it could be created).
std::unique_ptr<EventLoop> NewLoop();

// Runs `loop` until `done()` or kPatience has passed; returns done().
bool RunUntil(EventLoop& loop, const std::function<bool()>& done);

// Options for node `self` on 127.0.0.1, an ephemeral port, the test
// cluster, and short timeouts and backoffs (tests wait on conditions, so
// short only makes them quicker).
TcpTransportOptions TestOptions(NodeId self, Logger* logger);

// Creates a transport (CHECKs that it could be).
std::unique_ptr<TcpTransport> NewTransport(EventLoop* loop,
                                           TcpTransportOptions options);

// A transport with its received packets.
struct TestNode {
  std::unique_ptr<TcpTransport> transport;
  std::vector<Packet> received;
};

// Creates a node whose receiver appends to `received`.
std::unique_ptr<TestNode> NewNode(EventLoop* loop, TcpTransportOptions options);

// Makes every node a peer of every other (full mesh).
void ConnectAll(const std::vector<TestNode*>& nodes);

raft::Message RaftMessage(uint64_t from, uint64_t to, uint64_t term,
                          absl::string_view entry);

// Encoded frames, as a peer would send them. `lane`: transport.proto's
// Lane number (any value, to test refusals).
std::string HelloFrame(uint64_t cluster_id, uint64_t from, uint64_t to,
                       uint32_t protocol_version = kProtocolVersion,
                       uint32_t min_cluster_version = 1, uint32_t lane = 0);
std::string RaftFrame(const raft::Message& message);
std::string BytesFrame(absl::string_view bytes);

// A hand-driven TCP client: connects to a transport's listener and writes
// whatever bytes a test wants.
class RawPeer {
 public:
  // Connects to 127.0.0.1:port (CHECKs). The connect completes from the
  // listener's backlog, before the transport accepts.
  explicit RawPeer(uint16_t port);

  // Writes all of `bytes` (CHECKs; tests write little, which the socket
  // buffer always takes).
  void Write(absl::string_view bytes);

  // Appends what has arrived to `out` without blocking. False once the
  // other end has closed or reset the connection.
  bool ReadAvailable(std::string* out);

  // True once the other end has closed or reset the connection (reads
  // without blocking; discards what it reads).
  bool ClosedByPeer();

  // Closes our end.
  void Close() { fd_.Reset(); }

 private:
  UniqueFd fd_;
};

// A listener that never accepts: connections complete from its backlog,
// and whatever is sent to them piles up unread (a peer that stops reading).
class DeafListener {
 public:
  // `receive_buffer_bytes`: SO_RCVBUF of the connections it leaves
  // unaccepted (small: they fill quickly).
  explicit DeafListener(int receive_buffer_bytes);
  uint16_t port() const { return port_; }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
};

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_TRANSPORT_TRANSPORT_TEST_UTIL_H_
