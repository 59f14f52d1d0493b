#include "net/transport/transport_test_util.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "core/base/check.h"
#include "net/transport/frame.h"
#include "net/transport/socket.h"
#include "net/transport/transport.pb.h"

namespace blixard::net::testing {

std::unique_ptr<EventLoop> NewLoop() {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  CHECK(loop.ok()) << loop.status();
  return std::move(*loop);
}

bool RunUntil(EventLoop& loop, const std::function<bool()>& done) {
  const MonoMicros give_up =
      loop.clock().NowMicros() + absl::ToInt64Microseconds(kPatience);
  while (!done()) {
    if (loop.clock().NowMicros() >= give_up) return false;
    loop.RunOnce(absl::Milliseconds(10));
  }
  return true;
}

TcpTransportOptions TestOptions(NodeId self, Logger* logger) {
  TcpTransportOptions options;
  options.cluster_id = kTestClusterId;
  options.self = self;
  options.listen = {"127.0.0.1", 0};
  options.logger = logger;
  options.seed = self.value();
  options.connect_timeout_us = 2 * kMicrosPerSecond;
  options.handshake_timeout_us = 2 * kMicrosPerSecond;
  options.write_stall_timeout_us = 2 * kMicrosPerSecond;
  options.reconnect_backoff_min_us = 5 * kMicrosPerMilli;
  options.reconnect_backoff_max_us = 50 * kMicrosPerMilli;
  return options;
}

std::unique_ptr<TcpTransport> NewTransport(EventLoop* loop,
                                           TcpTransportOptions options) {
  absl::StatusOr<std::unique_ptr<TcpTransport>> transport =
      TcpTransport::Create(loop, std::move(options));
  CHECK(transport.ok()) << transport.status();
  return std::move(*transport);
}

std::unique_ptr<TestNode> NewNode(EventLoop* loop, TcpTransportOptions options) {
  auto node = std::make_unique<TestNode>();
  node->transport = NewTransport(loop, std::move(options));
  TestNode* raw = node.get();
  node->transport->SetReceiver(
      [raw](Packet&& packet) { raw->received.push_back(std::move(packet)); });
  return node;
}

void ConnectAll(const std::vector<TestNode*>& nodes) {
  for (TestNode* from : nodes) {
    for (TestNode* to : nodes) {
      if (from == to) continue;
      const absl::Status added = from->transport->AddPeer(
          to->transport->self(), to->transport->listen_address());
      CHECK(added.ok()) << added;
    }
  }
}

raft::Message RaftMessage(uint64_t from, uint64_t to, uint64_t term,
                          absl::string_view entry) {
  raft::Message message;
  message.set_type(raft::MSG_APPEND);
  message.set_from(from);
  message.set_to(to);
  message.set_term(term);
  message.add_entries()->set_data(std::string(entry));
  return message;
}

std::string HelloFrame(uint64_t cluster_id, uint64_t from, uint64_t to,
                       uint32_t protocol_version, uint32_t min_cluster_version,
                       uint32_t lane) {
  transport::Hello hello;
  hello.set_cluster_id(cluster_id);
  hello.set_from(from);
  hello.set_to(to);
  hello.set_protocol_version(protocol_version);
  hello.set_min_cluster_version(min_cluster_version);
  // Proto3 enums are open: a number the enum does not name is kept as is.
  hello.set_lane(static_cast<transport::Lane>(lane));
  return EncodeFrame(FrameType::kHello, hello.SerializeAsString());
}

std::string RaftFrame(const raft::Message& message) {
  transport::PeerMessage body;
  *body.mutable_raft() = message;
  return EncodeFrame(FrameType::kPeerMessage, body.SerializeAsString());
}

std::string BytesFrame(absl::string_view bytes) {
  transport::PeerMessage body;
  body.set_host_bytes(std::string(bytes));
  return EncodeFrame(FrameType::kPeerMessage, body.SerializeAsString());
}

RawPeer::RawPeer(uint16_t port) {
  absl::StatusOr<Dialing> dialing = StartConnect({"127.0.0.1", port});
  CHECK(dialing.ok()) << dialing.status();
  fd_ = std::move(dialing->fd);
  // A loopback connect completes from the backlog; wait for it without the
  // loop (the transport need not accept for this).
  for (int i = 0; i < 100000; ++i) {
    sockaddr_in peer{};
    socklen_t size = sizeof(peer);
    if (getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &size) == 0) {
      return;
    }
    CHECK_EQ(errno, ENOTCONN);
  }
  CHECK(false) << "raw connect to port " << port << " never completed";
}

void RawPeer::Write(absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent =
        send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    CHECK_GT(sent, 0) << "raw peer write: errno " << errno;
    bytes.remove_prefix(static_cast<size_t>(sent));
  }
}

bool RawPeer::ReadAvailable(std::string* out) {
  char buffer[64 * 1024];
  while (true) {
    const ssize_t got = recv(fd_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (got > 0) {
      out->append(buffer, static_cast<size_t>(got));
      continue;
    }
    if (got == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;  // ECONNRESET: closed
  }
}

bool RawPeer::ClosedByPeer() {
  std::string ignored;
  return !ReadAvailable(&ignored);
}

DeafListener::DeafListener(int receive_buffer_bytes) {
  SocketOptions options;
  options.receive_buffer_bytes = receive_buffer_bytes;
  absl::StatusOr<UniqueFd> fd = ListenTcp({"127.0.0.1", 0}, 8, options);
  CHECK(fd.ok()) << fd.status();
  fd_ = std::move(*fd);
  absl::StatusOr<uint16_t> port = LocalPort(fd_.get());
  CHECK(port.ok()) << port.status();
  port_ = *port;
}

}  // namespace blixard::net::testing
