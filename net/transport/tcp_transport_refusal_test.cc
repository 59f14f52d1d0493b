// TcpTransport refuses what a bad or confused peer sends: wrong cluster,
// unknown peer, wrong target, unsupported versions, bad lanes, garbage,
// oversized lengths, corrupt or meaningless bodies, frames out of order,
// silence. Each case asserts that the connection is closed, that the reason's
// counter went up by one and the reason was logged, and that nothing was
// delivered; afterwards the node still accepts a good peer.
//
// The bad peers are raw sockets (transport_test_util.h RawPeer) that write
// bytes by hand. Waits run the loop until a condition holds (kPatience).
#include <memory>
#include <chrono>
#include <string>
#include <thread>
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
#include "net/transport/frame.h"
#include "net/transport/tcp_transport.h"
#include "net/transport/transport.pb.h"
#include "net/transport/transport_test_util.h"

namespace blixard::net {
namespace {

using ::blixard::net::testing::BytesFrame;
using ::blixard::net::testing::DeafListener;
using ::blixard::net::testing::HelloFrame;
using ::blixard::net::testing::kTestClusterId;
using ::blixard::net::testing::NewLoop;
using ::blixard::net::testing::NewNode;
using ::blixard::net::testing::RaftFrame;
using ::blixard::net::testing::RaftMessage;
using ::blixard::net::testing::RawPeer;
using ::blixard::net::testing::RunUntil;
using ::blixard::net::testing::TestNode;
using ::blixard::net::testing::TestOptions;
using ::blixard::testing::IsOk;
using ::testing::HasSubstr;

// Node 1 under test; node 2 is its one peer (its address is a listener
// that never answers: only node 1's accepting side matters here).
class TcpTransportRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(TestOptions(NodeId(1), &logger_)); }
  void TearDown() override {
    node_->transport->CheckInvariants();
    loop_->CheckInvariants();
  }

  void Start(TcpTransportOptions options) {
    node_.reset();
    node_ = NewNode(loop_.get(), std::move(options));
    ASSERT_THAT(node_->transport->AddPeer(NodeId(2),
                                          {"127.0.0.1", peer_two_.port()}),
                IsOk());
  }

  TcpTransport& transport() { return *node_->transport; }
  uint16_t port() { return node_->transport->listen_port(); }

  // A raw peer writes `bytes`; the transport must close it for `reason`,
  // count it once, log it, and deliver nothing.
  // `waiting`: connections of the test's own that stay open, waiting for
  // their HELLO.
  void ExpectRefused(const std::string& bytes, CloseReason reason,
                     absl::string_view logged, size_t waiting = 0) {
    const uint64_t before = transport().counters().closed_by(reason);
    logger_.TakeLines();
    RawPeer peer(port());
    if (!bytes.empty()) peer.Write(bytes);
    ASSERT_TRUE(RunUntil(*loop_, [&] {
      return transport().counters().closed_by(reason) == before + 1 &&
             peer.ClosedByPeer();
    })) << CloseReasonName(reason) << "\n" << transport().DebugString()
        << absl::StrJoin(logger_.lines(), "\n");
    EXPECT_TRUE(node_->received.empty()) << CloseReasonName(reason);
    EXPECT_EQ(transport().counters().packets_delivered, 0u);
    EXPECT_EQ(transport().inbound_connections(), waiting);
    EXPECT_EQ(transport().handshaking(), waiting);
    const std::string logs = absl::StrJoin(logger_.lines(), "\n");
    EXPECT_THAT(logs, HasSubstr("WARN node 1 transport: inbound connection "
                                "from "));
    EXPECT_THAT(logs, HasSubstr(absl::StrCat("closed (", CloseReasonName(reason),
                                             "): ")));
    EXPECT_THAT(logs, HasSubstr(logged));
    transport().CheckInvariants();
  }

  // A good peer (node 2) is still heard, from the handshake's identity.
  void ExpectAGoodPeerIsStillHeard() {
    RawPeer peer(port());
    peer.Write(HelloFrame(kTestClusterId, 2, 1) + BytesFrame("still here"));
    ASSERT_TRUE(RunUntil(*loop_, [&] { return !node_->received.empty(); }));
    EXPECT_EQ(node_->received[0].from, NodeId(2));
    EXPECT_EQ(node_->received[0].bytes, "still here");
  }

  std::unique_ptr<EventLoop> loop_ = NewLoop();
  CapturingLogger logger_;
  DeafListener peer_two_{4096};
  std::unique_ptr<TestNode> node_;
  const std::string message_ = RaftFrame(RaftMessage(2, 1, 3, "entry"));
};

TEST_F(TcpTransportRefusalTest, AnotherClustersHelloIsRefused) {
  ExpectRefused(HelloFrame(0xbad, 2, 1) + message_, CloseReason::kWrongCluster,
                "is for cluster 0000000000000bad, this node is in cluster "
                "c1c1c1c1c1c1c1c1");
  ExpectAGoodPeerIsStillHeard();
}

// A flood of refusals is counted in full but logged within the budget;
// the next line logged for that reason says how many were left out.
TEST_F(TcpTransportRefusalTest, AFloodOfRefusalsIsCountedButNotAllLogged) {
  constexpr int kFlood = 200;
  const uint64_t before = transport().counters().closed_by(CloseReason::kWrongCluster);
  logger_.TakeLines();
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kFlood; ++i) {
    RawPeer peer(port());
    peer.Write(HelloFrame(0xbad, 2, 1));
    ASSERT_TRUE(RunUntil(*loop_, [&] { return peer.ClosedByPeer(); }));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(transport().counters().closed_by(CloseReason::kWrongCluster), before + kFlood);
  size_t lines = 0;
  for (const std::string& line : logger_.TakeLines()) {
    if (line.find("closed (wrong_cluster)") != std::string::npos) ++lines;
  }
  EXPECT_LT(lines, static_cast<size_t>(kFlood));
  EXPECT_LE(lines, TcpTransport::kCloseLogsPerSecondMax * (static_cast<size_t>(seconds) + 2));
  // Past the second, the next refusal is logged and tells the count.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  RawPeer late(port());
  late.Write(HelloFrame(0xbad, 2, 1));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return late.ClosedByPeer(); }));
  EXPECT_THAT(absl::StrJoin(logger_.lines(), "\n"),
              HasSubstr("more closes for wrong_cluster not logged]"));
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, AnUnknownPeersHelloIsRefused) {
  ExpectRefused(HelloFrame(kTestClusterId, 42, 1) + message_,
                CloseReason::kUnknownPeer,
                "node 42 is not a peer of this node");
  // Not even a node that claims to be us.
  ExpectRefused(HelloFrame(kTestClusterId, 1, 1) + message_,
                CloseReason::kUnknownPeer, "node 1 is not a peer");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, AHelloForAnotherNodeIsRefused) {
  ExpectRefused(HelloFrame(kTestClusterId, 2, 7) + message_,
                CloseReason::kWrongTarget, "is not for this node (1)");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, UnsupportedVersionsAreRefused) {
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1, kProtocolVersion + 1) +
                    message_,
                CloseReason::kUnsupportedVersion,
                absl::StrCat("speaks protocol version ", kProtocolVersion + 1));
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1, 0) + message_,
                CloseReason::kUnsupportedVersion, "speaks protocol version 0");
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1, kProtocolVersion, 5) +
                    message_,
                CloseReason::kUnsupportedVersion,
                "needs cluster version >= 5, this node runs cluster version 1");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, BadLanesAreRefused) {
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1, kProtocolVersion, 1,
                           /*lane=*/7) +
                    BytesFrame("chunk"),
                CloseReason::kBadLane,
                "HELLO from 2 to 1 names lane 7, this node knows control (0) "
                "and bulk (1)");
  // Version 1 had no lanes: its HELLO cannot name the bulk one.
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1, /*protocol_version=*/1, 1,
                           /*lane=*/1) +
                    BytesFrame("chunk"),
                CloseReason::kBadLane,
                "names the bulk lane in protocol version 1, which has none (2 "
                "added it)");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, EachLaneReplacesOnlyItsOwnOlderConnection) {
  // A version 1 dialer (no lane: control) and a bulk connection from the
  // same peer: neither replaces the other.
  RawPeer control(port());
  control.Write(HelloFrame(kTestClusterId, 2, 1, /*protocol_version=*/1));
  RawPeer bulk(port());
  bulk.Write(HelloFrame(kTestClusterId, 2, 1, kProtocolVersion, 1,
                        /*lane=*/1) +
             BytesFrame("bulk"));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return node_->received.size() == 1; }));
  EXPECT_EQ(transport().inbound_connections(), 2u);
  EXPECT_EQ(transport().counters().closed_by(CloseReason::kReplaced), 0u);
  EXPECT_EQ(node_->received[0].from, NodeId(2));
  EXPECT_EQ(node_->received[0].bytes, "bulk");

  // A newer bulk connection replaces the older bulk one only.
  RawPeer newer_bulk(port());
  newer_bulk.Write(HelloFrame(kTestClusterId, 2, 1, kProtocolVersion, 1,
                              /*lane=*/1));
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return transport().counters().closed_by(CloseReason::kReplaced) == 1 &&
           bulk.ClosedByPeer();
  }));
  EXPECT_THAT(absl::StrJoin(logger_.lines(), "\n"),
              HasSubstr("opened a newer bulk connection"));
  control.Write(BytesFrame("control"));
  newer_bulk.Write(BytesFrame("newer bulk"));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return node_->received.size() == 3; }));
  EXPECT_FALSE(control.ClosedByPeer());
  EXPECT_EQ(transport().inbound_connections(), 2u);
}

TEST_F(TcpTransportRefusalTest, GarbageIsRefused) {
  ExpectRefused("GET / HTTP/1.1\r\nHost: node1\r\n\r\n", CloseReason::kBadFrame,
                "bad frame magic");
  // Garbage after a good HELLO: the HELLO alone delivers nothing.
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1) + "\x01garbage garbage!",
                CloseReason::kBadFrame, "frame 2 at stream byte");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, AnOversizedLengthIsRefusedBeforeItsBody) {
  std::string header =
      EncodeFrame(FrameType::kPeerMessage, "").substr(0, kFrameHeaderBytes);
  const auto length = static_cast<uint32_t>(kFrameBodyBytesMax + 1);
  for (int i = 0; i < 4; ++i) {
    header[8 + i] = static_cast<char>((length >> (8 * i)) & 0xff);
  }
  // Only the header is sent: the refusal cannot wait for 16 MiB.
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1) + header,
                CloseReason::kFrameTooLarge,
                "frame body length 16777217 above the limit");
  ExpectRefused(header, CloseReason::kFrameTooLarge, "frame 1 at stream byte 0");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, ACorruptBodyIsRefused) {
  std::string corrupt = message_;
  corrupt[corrupt.size() - 1] ^= 0x40;
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1) + corrupt,
                CloseReason::kBadChecksum, "does not match the header");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, BodiesThatMeanNothingAreRefused) {
  ExpectRefused(EncodeFrame(FrameType::kHello, "\xff\xff\xff"),
                CloseReason::kBadBody, "HELLO body that does not parse");
  // A well-framed message that carries neither a raft message nor bytes.
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1) +
                    EncodeFrame(FrameType::kPeerMessage, ""),
                CloseReason::kBadBody, "does not parse or carries nothing");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, FramesOutOfOrderAreRefused) {
  ExpectRefused(message_ + HelloFrame(kTestClusterId, 2, 1),
                CloseReason::kUnexpectedFrame,
                "the first frame is peer_message, not hello");
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1) +
                    HelloFrame(kTestClusterId, 2, 1) + message_,
                CloseReason::kUnexpectedFrame, "a hello frame after the HELLO");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, SilenceIsRefusedAfterTheHandshakeTimeout) {
  TcpTransportOptions options = TestOptions(NodeId(1), &logger_);
  options.handshake_timeout_us = 50 * kMicrosPerMilli;
  Start(std::move(options));
  ExpectRefused("", CloseReason::kHandshakeTimeout, "no HELLO within 50000 us");
  // Half a HELLO is silence too.
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1).substr(0, 10),
                CloseReason::kHandshakeTimeout, "no HELLO within");
  ExpectAGoodPeerIsStillHeard();
}

TEST_F(TcpTransportRefusalTest, TooManyWaitingHandshakesAreRefusedAtAccept) {
  TcpTransportOptions options = TestOptions(NodeId(1), &logger_);
  options.handshakes_max = 2;
  Start(std::move(options));
  RawPeer first(port());
  RawPeer second(port());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return transport().handshaking() == 2; }));
  ExpectRefused("", CloseReason::kTooManyHandshakes,
                "2 connections already wait for their HELLO", /*waiting=*/2);
  EXPECT_FALSE(first.ClosedByPeer());
  EXPECT_FALSE(second.ClosedByPeer());
}

TEST_F(TcpTransportRefusalTest, PacketsSpeakForTheHandshakesPeerNotTheirPayload) {
  RawPeer peer(port());
  // The payload claims to come from node 99 and to go to node 77.
  peer.Write(HelloFrame(kTestClusterId, 2, 1) +
             RaftFrame(RaftMessage(99, 77, 3, "forged")));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return !node_->received.empty(); }));
  const Packet& packet = node_->received[0];
  EXPECT_EQ(packet.from, NodeId(2));
  EXPECT_EQ(packet.to, NodeId(1));
  // The payload is delivered as it came: the Host drops a Raft message
  // whose own `from` disagrees with the packet's.
  EXPECT_EQ(packet.raft.from(), 99u);
  EXPECT_EQ(packet.raft.entries(0).data(), "forged");
}

TEST_F(TcpTransportRefusalTest, ANewerConnectionReplacesAnOlderOne) {
  RawPeer older(port());
  older.Write(HelloFrame(kTestClusterId, 2, 1));
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return transport().counters().handshakes == 1;
  }));
  RawPeer newer(port());
  newer.Write(HelloFrame(kTestClusterId, 2, 1) + BytesFrame("newer"));
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return transport().counters().closed_by(CloseReason::kReplaced) == 1 &&
           older.ClosedByPeer() && !node_->received.empty();
  }));
  EXPECT_EQ(transport().inbound_connections(), 1u);
  EXPECT_FALSE(newer.ClosedByPeer());
  EXPECT_EQ(node_->received[0].bytes, "newer");
}

}  // namespace
}  // namespace blixard::net
