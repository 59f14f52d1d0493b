// TcpTransport between real transports on one EventLoop: delivery, the
// queue bounds, coalescing, the bulk lane beside the control lane,
// reconnecting, stalls, the address book.
// Refusals of bad peers are in tcp_transport_refusal_test.cc.
//
// No sleeps and no timing in assertions: every wait runs the loop until a
// condition holds, bounded by kPatience.
#include "net/transport/tcp_transport.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/logger.h"
#include "core/base/status_matchers.h"
#include "core/env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/loop/event_loop.h"
#include "net/transport/transport_test_util.h"

namespace blixard::net {
namespace {

using ::blixard::net::testing::ConnectAll;
using ::blixard::net::testing::DeafListener;
using ::blixard::net::testing::NewLoop;
using ::blixard::net::testing::NewNode;
using ::blixard::net::testing::NewTransport;
using ::blixard::net::testing::RaftMessage;
using ::blixard::net::testing::RunUntil;
using ::blixard::net::testing::TestNode;
using ::blixard::net::testing::TestOptions;
using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;

using SendResult = Transport::SendResult;
using PeerState = TcpTransport::PeerState;

std::string Logs(const CapturingLogger& logger) {
  return absl::StrJoin(logger.lines(), "\n");
}

class TcpTransportTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& node : nodes_) node->transport->CheckInvariants();
    loop_->CheckInvariants();
  }

  TestNode* Node(uint64_t id) {
    return Node(TestOptions(NodeId(id), &logger_));
  }
  TestNode* Node(TcpTransportOptions options) {
    nodes_.push_back(NewNode(loop_.get(), std::move(options)));
    return nodes_.back().get();
  }
  // Destroys a node (its process stops: connections close, port freed).
  void Stop(TestNode* node) {
    for (auto it = nodes_.begin(); it != nodes_.end(); ++it) {
      if (it->get() == node) {
        nodes_.erase(it);
        return;
      }
    }
  }

  // Declared first: destroyed last, after every transport on it.
  std::unique_ptr<EventLoop> loop_ = NewLoop();
  CapturingLogger logger_;
  std::vector<std::unique_ptr<TestNode>> nodes_;
};

TEST_F(TcpTransportTest, TwoTransportsExchangeRaftMessagesAndBytes) {
  TestNode* a = Node(1);
  TestNode* b = Node(2);
  ConnectAll({a, b});

  const raft::Message message = RaftMessage(1, 2, 7, "entry");
  EXPECT_EQ(a->transport->Send(NodeId(2), message), SendResult::kQueued);
  EXPECT_EQ(b->transport->SendBytes(NodeId(1), "chunk"), SendResult::kQueued);
  EXPECT_TRUE(a->received.empty());  // never inside Send
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return !a->received.empty() && !b->received.empty();
  })) << a->transport->DebugString() << b->transport->DebugString();

  ASSERT_EQ(b->received.size(), 1u);
  EXPECT_EQ(b->received[0].from, NodeId(1));
  EXPECT_EQ(b->received[0].to, NodeId(2));
  EXPECT_EQ(b->received[0].kind, Packet::Kind::kRaft);
  EXPECT_EQ(b->received[0].raft.SerializeAsString(),
            message.SerializeAsString());
  ASSERT_EQ(a->received.size(), 1u);
  EXPECT_EQ(a->received[0].from, NodeId(2));
  EXPECT_EQ(a->received[0].to, NodeId(1));
  EXPECT_EQ(a->received[0].kind, Packet::Kind::kBytes);
  EXPECT_EQ(a->received[0].bytes, "chunk");
  EXPECT_EQ(a->transport->QueuedPackets(NodeId(2)), 0u);
  EXPECT_EQ(b->transport->QueuedPackets(NodeId(1)), 0u);
  EXPECT_EQ(a->transport->peer_state(NodeId(2)), PeerState::kConnected);
  EXPECT_EQ(a->transport->counters().handshakes, 1u);
  EXPECT_EQ(b->transport->counters().handshakes, 1u);
  EXPECT_EQ(a->transport->counters().control.frames_written, 1u);
  EXPECT_EQ(b->transport->counters().packets_delivered, 1u);
}

TEST_F(TcpTransportTest, ThreeTransportsDeliverEveryLinkInOrder) {
  TestNode* nodes[] = {Node(1), Node(2), Node(3)};
  ConnectAll({nodes[0], nodes[1], nodes[2]});
  constexpr int kPerLink = 50;
  for (int i = 0; i < kPerLink; ++i) {
    for (TestNode* from : nodes) {
      for (TestNode* to : nodes) {
        if (from == to) continue;
        const NodeId to_id = to->transport->self();
        const uint64_t from_id = from->transport->self().value();
        if (i % 2 == 0) {
          ASSERT_EQ(from->transport->Send(
                        to_id, RaftMessage(from_id, to_id.value(), 1,
                                           absl::StrCat(i))),
                    SendResult::kQueued);
        } else {
          ASSERT_EQ(from->transport->SendBytes(to_id, absl::StrCat(i)),
                    SendResult::kQueued);
        }
      }
    }
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    for (TestNode* node : nodes) {
      if (node->received.size() < 2 * kPerLink) return false;
    }
    return true;
  }));
  for (TestNode* node : nodes) {
    ASSERT_EQ(node->received.size(), 2u * kPerLink);
    // Per sender, in send order (one TCP connection per link is FIFO).
    std::map<NodeId, int> next;
    for (const Packet& packet : node->received) {
      EXPECT_EQ(packet.to, node->transport->self());
      EXPECT_NE(packet.from, node->transport->self());
      const int i = next[packet.from]++;
      if (i % 2 == 0) {
        ASSERT_EQ(packet.kind, Packet::Kind::kRaft);
        EXPECT_EQ(packet.raft.from(), packet.from.value());
        EXPECT_EQ(packet.raft.entries(0).data(), absl::StrCat(i));
      } else {
        ASSERT_EQ(packet.kind, Packet::Kind::kBytes);
        EXPECT_EQ(packet.bytes, absl::StrCat(i));
      }
    }
    EXPECT_EQ(next.size(), 2u);
  }
}

TEST_F(TcpTransportTest, QueuedFramesLeaveInGatheredWrites) {
  TestNode* a = Node(1);
  TestNode* b = Node(2);
  ConnectAll({a, b});
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return b->transport->counters().handshakes == 1 &&
           a->transport->QueuedPackets(NodeId(2)) == 0;
  }));
  const uint64_t writes_before = a->transport->counters().control.writes;
  constexpr int kBurst = 100;
  for (int i = 0; i < kBurst; ++i) {
    ASSERT_EQ(a->transport->Send(NodeId(2), RaftMessage(1, 2, 1, "x")),
              SendResult::kQueued);
  }
  EXPECT_EQ(a->transport->QueuedPackets(NodeId(2)), size_t{kBurst});
  ASSERT_TRUE(RunUntil(*loop_, [&] { return b->received.size() == kBurst; }));
  // 100 small frames fit the socket at once: ceil(100 / kWritePiecesMax)
  // gathered writes, not 100.
  EXPECT_LE(
      a->transport->counters().control.writes - writes_before,
      (kBurst + Connection::kWritePiecesMax - 1) / Connection::kWritePiecesMax);
  EXPECT_EQ(a->transport->counters().control.frames_written, size_t{kBurst});
}

TEST_F(TcpTransportTest, AQueueLongerThanOneWakesWritesLeavesOverSeveral) {
  TestNode* a = Node(1);
  TestNode* b = Node(2);
  ConnectAll({a, b});
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return b->transport->counters().handshakes == 1 &&
           a->transport->QueuedPackets(NodeId(2)) == 0;
  }));
  // More frames than kWritesPerWakeMax gathered writes can take.
  constexpr size_t kBurst = Transport::kQueuePacketsMax;
  static_assert(kBurst >
                TcpTransport::kWritesPerWakeMax * Connection::kWritePiecesMax);
  for (size_t i = 0; i < kBurst; ++i) {
    ASSERT_EQ(a->transport->SendBytes(NodeId(2), absl::StrCat(i)),
              SendResult::kQueued);
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    a->transport->CheckInvariants();  // also between the wakes
    return b->received.size() == kBurst;
  }));
  for (size_t i = 0; i < kBurst; ++i) {
    ASSERT_EQ(b->received[i].bytes, absl::StrCat(i));
  }
}

TEST_F(TcpTransportTest, ALargeMessageArrivesWhole) {
  TestNode* a = Node(1);
  TestNode* b = Node(2);
  ConnectAll({a, b});
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131);
  ASSERT_EQ(a->transport->SendBytes(NodeId(2), big), SendResult::kQueued);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return !b->received.empty(); }));
  EXPECT_TRUE(b->received[0].bytes == big);
}

TEST_F(TcpTransportTest, SendToAnUnknownPeerIsUnreachable) {
  TestNode* a = Node(1);
  EXPECT_EQ(a->transport->Send(NodeId(9), RaftMessage(1, 9, 1, "x")),
            SendResult::kUnreachable);
  EXPECT_EQ(a->transport->SendBytes(NodeId(9), "x"), SendResult::kUnreachable);
  EXPECT_EQ(a->transport->QueuedPackets(NodeId(9)), 0u);
  EXPECT_EQ(a->transport->counters().control.dropped_unreachable, 2u);
}

TEST_F(TcpTransportTest, AFullPacketQueueSaysQueueFull) {
  DeafListener deaf(4096);
  TestNode* a = Node(1);
  ASSERT_THAT(a->transport->AddPeer(NodeId(2), {"127.0.0.1", deaf.port()}),
              IsOk());
  // The loop does not run, so nothing leaves the queue.
  for (size_t i = 0; i < Transport::kQueuePacketsMax; ++i) {
    ASSERT_EQ(a->transport->SendBytes(NodeId(2), "x"), SendResult::kQueued) << i;
  }
  EXPECT_EQ(a->transport->SendBytes(NodeId(2), "x"), SendResult::kQueueFull);
  EXPECT_EQ(a->transport->Send(NodeId(2), RaftMessage(1, 2, 1, "x")),
            SendResult::kQueueFull);
  EXPECT_EQ(a->transport->QueuedPackets(NodeId(2)), Transport::kQueuePacketsMax);
  EXPECT_EQ(a->transport->counters().control.dropped_queue_full, 2u);
}

TEST_F(TcpTransportTest, AFullByteQueueSaysQueueFull) {
  DeafListener deaf(4096);
  TcpTransportOptions options = TestOptions(NodeId(1), &logger_);
  options.frame_body_bytes_max = 64 * 1024;
  options.queue_bytes_max = 256 * 1024;
  TestNode* a = Node(std::move(options));
  ASSERT_THAT(a->transport->AddPeer(NodeId(2), {"127.0.0.1", deaf.port()}),
              IsOk());
  const std::string chunk(60 * 1024, 'c');
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(a->transport->SendBytes(NodeId(2), chunk), SendResult::kQueued);
  }
  EXPECT_EQ(a->transport->SendBytes(NodeId(2), chunk), SendResult::kQueueFull);
  // A small one still fits.
  EXPECT_EQ(a->transport->SendBytes(NodeId(2), "small"), SendResult::kQueued);
  // One above the frame limit can never be sent: dropped, said and logged.
  EXPECT_EQ(a->transport->SendBytes(NodeId(2), std::string(65 * 1024, 'b')),
            SendResult::kQueueFull);
  EXPECT_EQ(a->transport->counters().control.dropped_queue_full, 1u);
  EXPECT_EQ(a->transport->counters().control.dropped_too_large, 1u);
  EXPECT_THAT(Logs(logger_), HasSubstr("exceed the 65536-byte frame limit"));
}

TEST_F(TcpTransportTest, APeerThatStopsReadingIsDisconnected) {
  DeafListener deaf(4096);
  TcpTransportOptions options = TestOptions(NodeId(1), &logger_);
  options.socket_send_buffer_bytes = 4096;
  options.write_stall_timeout_us = 100 * kMicrosPerMilli;
  TestNode* a = Node(std::move(options));
  ASSERT_THAT(a->transport->AddPeer(NodeId(2), {"127.0.0.1", deaf.port()}),
              IsOk());
  const std::string chunk(1 << 20, 'c');
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(a->transport->SendBytes(NodeId(2), chunk), SendResult::kQueued);
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return a->transport->counters().closed_by(CloseReason::kWriteStalled) == 1;
  })) << a->transport->DebugString();
  EXPECT_GE(a->transport->counters().control.dropped_on_disconnect, 1u);
  EXPECT_THAT(Logs(logger_), HasSubstr("closed (write_stalled)"));
}

// --- The bulk lane. ---

TEST_F(TcpTransportTest, TheBulkLaneIsDialedByTheFirstSendBulk) {
  TestNode* a = Node(1);
  TestNode* b = Node(2);
  ConnectAll({a, b});
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return a->transport->counters().handshakes == 1 &&
           b->transport->counters().handshakes == 1;
  }));
  // Control lanes only, so far.
  EXPECT_EQ(a->transport->peer_state(NodeId(2), Lane::kBulk), std::nullopt);
  EXPECT_EQ(b->transport->inbound_connections(), 1u);

  ASSERT_EQ(a->transport->SendBulk(NodeId(2), "chunk"), SendResult::kQueued);
  EXPECT_NE(a->transport->peer_state(NodeId(2), Lane::kBulk), std::nullopt);
  EXPECT_EQ(a->transport->QueuedPackets(NodeId(2), Lane::kBulk), 1u);
  EXPECT_EQ(a->transport->QueuedPackets(NodeId(2)), 1u);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return b->received.size() == 1; }));
  EXPECT_EQ(b->received[0].from, NodeId(1));
  EXPECT_EQ(b->received[0].to, NodeId(2));
  EXPECT_EQ(b->received[0].kind, Packet::Kind::kBytes);
  EXPECT_EQ(b->received[0].bytes, "chunk");
  // An additional connection: the control one was not replaced.
  EXPECT_EQ(b->transport->inbound_connections(), 2u);
  EXPECT_EQ(b->transport->counters().closed_by(CloseReason::kReplaced), 0u);
  EXPECT_EQ(a->transport->peer_state(NodeId(2), Lane::kBulk),
            PeerState::kConnected);
  EXPECT_EQ(a->transport->peer_state(NodeId(2)), PeerState::kConnected);
  EXPECT_EQ(a->transport->counters().bulk.dials, 1u);
  EXPECT_EQ(a->transport->counters().control.dials, 1u);
  EXPECT_EQ(a->transport->counters().bulk.frames_written, 1u);
  EXPECT_EQ(a->transport->counters().control.frames_written, 0u);
  EXPECT_THAT(a->transport->DebugString(),
              HasSubstr(" (bulk lane): connected, 0 packets"));
  EXPECT_THAT(b->transport->DebugString(),
              HasSubstr(": peer 1 (bulk lane), 1 packets delivered"));

  // Removing the peer ends both lanes, both ways.
  EXPECT_TRUE(b->transport->RemovePeer(NodeId(1)));
  EXPECT_EQ(b->transport->inbound_connections(), 0u);
  EXPECT_EQ(b->transport->counters().closed_by(CloseReason::kPeerRemoved), 3u);
}

TEST_F(TcpTransportTest, ABulkFloodDoesNotHoldBackTheControlLane) {
  // Small socket buffers: the flood moves a little per loop iteration, as
  // it would to a peer that reads slowly.
  TcpTransportOptions a_options = TestOptions(NodeId(1), &logger_);
  a_options.socket_send_buffer_bytes = 64 * 1024;
  TcpTransportOptions b_options = TestOptions(NodeId(2), &logger_);
  b_options.socket_receive_buffer_bytes = 64 * 1024;
  TestNode* a = Node(std::move(a_options));
  TestNode* b = Node(std::move(b_options));
  ConnectAll({a, b});
  constexpr int kChunks = 16;
  for (int i = 0; i < kChunks; ++i) {
    ASSERT_EQ(a->transport->SendBulk(
                  NodeId(2), std::string(1 << 20, static_cast<char>(i))),
              SendResult::kQueued)
        << i;
  }
  // The flood is under way: its first chunk is through.
  ASSERT_TRUE(RunUntil(*loop_, [&] { return !b->received.empty(); }));
  constexpr int kControl = 10;
  for (int i = 0; i < kControl; ++i) {
    ASSERT_EQ(
        a->transport->Send(NodeId(2), RaftMessage(1, 2, 1, absl::StrCat(i))),
        SendResult::kQueued);
    ASSERT_EQ(a->transport->SendBytes(NodeId(2), absl::StrCat("control ", i)),
              SendResult::kQueued);
  }
  const auto is_control = [](const Packet& packet) {
    return packet.kind == Packet::Kind::kRaft || packet.bytes.size() < 1024;
  };
  const auto count_control = [&] {
    return std::count_if(b->received.begin(), b->received.end(), is_control);
  };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return count_control() == 2 * kControl; }))
      << a->transport->DebugString();
  // Every control packet arrived while the flood still waited on its own
  // lane (one connection for both would have put them behind it all).
  EXPECT_GT(a->transport->QueuedPackets(NodeId(2), Lane::kBulk), 0u)
      << a->transport->DebugString();
  EXPECT_LT(b->received.size(), size_t{kChunks + 2 * kControl});

  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return b->received.size() == kChunks + 2 * kControl;
  })) << a->transport->DebugString();
  // Each lane in its own send order.
  int chunk = 0;
  int control = 0;
  for (const Packet& packet : b->received) {
    if (is_control(packet)) {
      if (packet.kind == Packet::Kind::kRaft) {
        EXPECT_EQ(packet.raft.entries(0).data(), absl::StrCat(control / 2));
      } else {
        EXPECT_EQ(packet.bytes, absl::StrCat("control ", control / 2));
      }
      ++control;
    } else {
      ASSERT_EQ(packet.bytes.size(), size_t{1} << 20);
      EXPECT_EQ(packet.bytes[0], static_cast<char>(chunk)) << chunk;
      ++chunk;
    }
  }
  EXPECT_EQ(chunk, kChunks);
  EXPECT_EQ(a->transport->counters().bulk.frames_written, size_t{kChunks});
  EXPECT_EQ(a->transport->counters().control.frames_written,
            size_t{2 * kControl});
}

TEST_F(TcpTransportTest, AFullBulkQueueLeavesTheControlLaneAlone) {
  TcpTransportOptions options = TestOptions(NodeId(1), &logger_);
  options.bulk_queue_packets_max = 4;
  TestNode* a = Node(std::move(options));
  TestNode* b = Node(2);
  ConnectAll({a, b});
  // The loop does not run, so nothing leaves the queues.
  const std::string chunk(1 << 20, 'c');
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(a->transport->SendBulk(NodeId(2), chunk), SendResult::kQueued);
  }
  EXPECT_EQ(a->transport->SendBulk(NodeId(2), chunk), SendResult::kQueueFull);
  EXPECT_EQ(a->transport->SendBulk(NodeId(2), "small"), SendResult::kQueueFull);
  EXPECT_EQ(a->transport->Send(NodeId(2), RaftMessage(1, 2, 1, "x")),
            SendResult::kQueued);
  EXPECT_EQ(a->transport->SendBytes(NodeId(2), "control"), SendResult::kQueued);
  EXPECT_EQ(a->transport->QueuedPackets(NodeId(2), Lane::kBulk), 4u);
  EXPECT_EQ(a->transport->QueuedPackets(NodeId(2), Lane::kControl), 2u);
  EXPECT_EQ(a->transport->counters().bulk.dropped_queue_full, 2u);
  EXPECT_EQ(a->transport->counters().control.dropped_queue_full, 0u);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return b->received.size() == 6; }));
  EXPECT_EQ(a->transport->QueuedPackets(NodeId(2)), 0u);
  // Room again.
  EXPECT_EQ(a->transport->SendBulk(NodeId(2), chunk), SendResult::kQueued);
}

TEST_F(TcpTransportTest, AFullControlQueueLeavesTheBulkLaneAlone) {
  DeafListener deaf(4096);
  TcpTransportOptions options = TestOptions(NodeId(1), &logger_);
  options.queue_packets_max = 2;
  TestNode* a = Node(std::move(options));
  ASSERT_THAT(a->transport->AddPeer(NodeId(2), {"127.0.0.1", deaf.port()}),
              IsOk());
  ASSERT_EQ(a->transport->SendBytes(NodeId(2), "x"), SendResult::kQueued);
  ASSERT_EQ(a->transport->SendBytes(NodeId(2), "x"), SendResult::kQueued);
  EXPECT_EQ(a->transport->Send(NodeId(2), RaftMessage(1, 2, 1, "x")),
            SendResult::kQueueFull);
  EXPECT_EQ(a->transport->SendBulk(NodeId(2), "bulk"), SendResult::kQueued);
  EXPECT_EQ(a->transport->counters().control.dropped_queue_full, 1u);
  EXPECT_EQ(a->transport->counters().bulk.dropped_queue_full, 0u);
}

TEST_F(TcpTransportTest, AStalledBulkLaneIsClosedWithoutTheControlLane) {
  DeafListener deaf(4096);
  TcpTransportOptions options = TestOptions(NodeId(1), &logger_);
  options.socket_send_buffer_bytes = 4096;
  options.write_stall_timeout_us = 100 * kMicrosPerMilli;
  TestNode* a = Node(std::move(options));
  ASSERT_THAT(a->transport->AddPeer(NodeId(2), {"127.0.0.1", deaf.port()}),
              IsOk());
  const std::string chunk(1 << 20, 'c');
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(a->transport->SendBulk(NodeId(2), chunk), SendResult::kQueued);
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return a->transport->counters().closed_by(CloseReason::kWriteStalled) == 1;
  })) << a->transport->DebugString();
  EXPECT_NE(a->transport->peer_state(NodeId(2), Lane::kBulk),
            PeerState::kConnected);
  EXPECT_EQ(a->transport->peer_state(NodeId(2)), PeerState::kConnected);
  EXPECT_GE(a->transport->counters().bulk.dropped_on_disconnect, 1u);
  EXPECT_EQ(a->transport->counters().control.dropped_on_disconnect, 0u);
  EXPECT_THAT(Logs(logger_), HasSubstr("(bulk lane) closed (write_stalled)"));
  // The bulk lane dials again by itself (its own backoff).
  ASSERT_TRUE(RunUntil(
      *loop_, [&] { return a->transport->counters().bulk.dials >= 2; }));
  EXPECT_EQ(a->transport->counters().control.dials, 1u);
}

TEST_F(TcpTransportTest, ReconnectsAfterThePeersListenerRestarts) {
  TestNode* a = Node(1);
  TestNode* b = Node(2);
  ConnectAll({a, b});
  ASSERT_EQ(a->transport->SendBytes(NodeId(2), "before"), SendResult::kQueued);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return b->received.size() == 1; }));
  const SocketAddress b_address = b->transport->listen_address();

  // B goes away; A notices the end of its connection and backs off.
  Stop(b);
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return a->transport->peer_state(NodeId(2)) != PeerState::kConnected;
  }));
  EXPECT_GE(a->transport->counters().closed_by(CloseReason::kPeerClosed), 1u);

  // B comes back on the same port; A reconnects by itself.
  TcpTransportOptions options = TestOptions(NodeId(2), &logger_);
  options.listen = b_address;
  TestNode* b2 = Node(std::move(options));
  ASSERT_THAT(b2->transport->AddPeer(NodeId(1), a->transport->listen_address()),
              IsOk());
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    if (!b2->received.empty()) return true;
    // Refused while A knows B is down (kUnreachable): Raft would retry.
    a->transport->SendBytes(NodeId(2), "after");
    return false;
  })) << a->transport->DebugString();
  EXPECT_EQ(b2->received[0].bytes, "after");
  EXPECT_EQ(b2->received[0].from, NodeId(1));
  EXPECT_GE(a->transport->counters().control.dials, 2u);
  EXPECT_EQ(a->transport->peer_state(NodeId(2)), PeerState::kConnected);
}

TEST_F(TcpTransportTest, RemovedPeersAreForgottenAndRefused) {
  TestNode* a = Node(1);
  TestNode* b = Node(2);
  ConnectAll({a, b});
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return a->transport->counters().handshakes == 1 &&
           b->transport->counters().handshakes == 1;
  }));
  EXPECT_TRUE(b->transport->RemovePeer(NodeId(1)));
  EXPECT_FALSE(b->transport->RemovePeer(NodeId(1)));
  EXPECT_EQ(b->transport->peer_state(NodeId(1)), std::nullopt);
  EXPECT_EQ(b->transport->SendBytes(NodeId(1), "x"), SendResult::kUnreachable);
  // Its outbound link and A's connection into B both closed.
  EXPECT_EQ(b->transport->counters().closed_by(CloseReason::kPeerRemoved), 2u);
  // A dials again and B now refuses it as an unknown peer.
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return b->transport->counters().closed_by(CloseReason::kUnknownPeer) >= 1;
  }));
  EXPECT_TRUE(b->received.empty());
}

TEST_F(TcpTransportTest, TheReceiverMayRemoveThePeerItIsHearing) {
  TestNode* a = Node(1);
  std::unique_ptr<TcpTransport> b =
      NewTransport(loop_.get(), TestOptions(NodeId(2), &logger_));
  int heard = 0;
  b->SetReceiver([&](Packet&&) {
    ++heard;
    b->RemovePeer(NodeId(1));
  });
  ASSERT_THAT(a->transport->AddPeer(NodeId(2), b->listen_address()), IsOk());
  ASSERT_THAT(b->AddPeer(NodeId(1), a->transport->listen_address()), IsOk());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(a->transport->SendBytes(NodeId(2), "x"), SendResult::kQueued);
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] { return heard > 0; }));
  // The frames behind the first were on the connection it closed.
  EXPECT_EQ(heard, 1);
  EXPECT_EQ(b->inbound_connections(), 0u);
  b->CheckInvariants();
}

TEST_F(TcpTransportTest, PacketsWithoutAReceiverAreDroppedAndCounted) {
  TestNode* a = Node(1);
  std::unique_ptr<TcpTransport> b =
      NewTransport(loop_.get(), TestOptions(NodeId(2), &logger_));
  ASSERT_THAT(a->transport->AddPeer(NodeId(2), b->listen_address()), IsOk());
  ASSERT_THAT(b->AddPeer(NodeId(1), a->transport->listen_address()), IsOk());
  ASSERT_EQ(a->transport->SendBytes(NodeId(2), "x"), SendResult::kQueued);
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return b->counters().dropped_no_receiver == 1;
  }));
  EXPECT_EQ(b->counters().packets_delivered, 0u);
  b->CheckInvariants();
}

TEST_F(TcpTransportTest, AddPeerRefusesBadPeers) {
  TestNode* a = Node(1);
  EXPECT_THAT(a->transport->AddPeer(NodeId(1), {"127.0.0.1", 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a->transport->AddPeer(kNoNode, {"127.0.0.1", 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a->transport->AddPeer(NodeId(2), {"node-two", 1}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("peer 2: address \"node-two\"")));
  DeafListener deaf(4096);
  ASSERT_THAT(a->transport->AddPeer(NodeId(2), {"127.0.0.1", deaf.port()}),
              IsOk());
  EXPECT_THAT(a->transport->AddPeer(NodeId(2), {"127.0.0.1", deaf.port()}),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(TcpTransportTest, DebugStringShowsEveryLink) {
  TestNode* a = Node(1);
  TestNode* b = Node(2);
  ConnectAll({a, b});
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return a->transport->counters().handshakes == 1 &&
           b->transport->counters().handshakes == 1;
  }));
  const std::string text = a->transport->DebugString();
  EXPECT_THAT(text, HasSubstr("node 1 listening on 127.0.0.1:"));
  EXPECT_THAT(text, HasSubstr("peer 2 at 127.0.0.1:"));
  EXPECT_THAT(text, HasSubstr(": connected, 0 packets"));
  EXPECT_THAT(text, HasSubstr(": peer 2, 0 packets delivered"));
}

TEST_F(TcpTransportTest, OptionsAreValidatedNamingTheField) {
  struct Case {
    void (*change)(TcpTransportOptions&);
    const char* field;
  };
  const Case cases[] = {
      {[](TcpTransportOptions& o) { o.cluster_id = 0; }, "cluster_id"},
      {[](TcpTransportOptions& o) { o.self = kNoNode; }, "self"},
      {[](TcpTransportOptions& o) { o.listen.host = "any"; }, "listen"},
      {[](TcpTransportOptions& o) { o.min_cluster_version = 2; },
       "min_cluster_version"},
      {[](TcpTransportOptions& o) { o.queue_packets_max = 0; },
       "queue_packets_max"},
      {[](TcpTransportOptions& o) {
         o.queue_packets_max = Transport::kQueuePacketsMax + 1;
       },
       "queue_packets_max"},
      {[](TcpTransportOptions& o) { o.queue_bytes_max = 1024; },
       "queue_bytes_max"},
      {[](TcpTransportOptions& o) { o.bulk_queue_packets_max = 0; },
       "bulk_queue_packets_max"},
      {[](TcpTransportOptions& o) { o.bulk_queue_bytes_max = 1024; },
       "bulk_queue_bytes_max"},
      {[](TcpTransportOptions& o) {
         o.frame_body_bytes_max = kFrameBodyBytesMax + 1;
       },
       "frame_body_bytes_max"},
      {[](TcpTransportOptions& o) { o.handshake_timeout_us = 0; },
       "handshake_timeout_us"},
      {[](TcpTransportOptions& o) { o.write_stall_timeout_us = -1; },
       "write_stall_timeout_us"},
      {[](TcpTransportOptions& o) {
         o.reconnect_backoff_min_us = 2 * o.reconnect_backoff_max_us;
       },
       "reconnect_backoff_min_us"},
      {[](TcpTransportOptions& o) { o.handshakes_max = 0; }, "handshakes_max"},
      {[](TcpTransportOptions& o) { o.socket_send_buffer_bytes = -1; },
       "socket_send_buffer_bytes"},
      {[](TcpTransportOptions& o) { o.logger = nullptr; }, "logger"},
  };
  for (const Case& c : cases) {
    TcpTransportOptions options = TestOptions(NodeId(1), &logger_);
    c.change(options);
    EXPECT_THAT(options.Validate(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(absl::StrCat("TcpTransportOptions.",
                                                c.field))))
        << c.field;
  }
  EXPECT_THAT(TestOptions(NodeId(1), &logger_).Validate(), IsOk());
  TcpTransportOptions defaults;
  defaults.cluster_id = 1;
  defaults.self = NodeId(1);
  defaults.logger = &logger_;
  EXPECT_THAT(defaults.Validate(), IsOk());
}

TEST_F(TcpTransportTest, CloseReasonsHaveNames) {
  for (size_t i = 0; i < kCloseReasonCount; ++i) {
    EXPECT_NE(CloseReasonName(static_cast<CloseReason>(i)), "unknown") << i;
  }
  EXPECT_EQ(CloseReasonName(CloseReason::kWrongCluster), "wrong_cluster");
  EXPECT_EQ(PeerStateName(PeerState::kBackoff), "backoff");
  EXPECT_EQ(CloseReasonName(CloseReason::kBadLane), "bad_lane");
  EXPECT_EQ(LaneName(Lane::kControl), "control");
  EXPECT_EQ(LaneName(Lane::kBulk), "bulk");
}

}  // namespace
}  // namespace blixard::net
