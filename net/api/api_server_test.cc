// ApiServer: calls in, replies out (pipelined, out of order), the bounds,
// and the refusals: each bad client is closed with its reason counted and
// logged, and the server goes on serving the others. Clients here are raw
// sockets (api_test_util.h RawClient) so the bytes are exactly the test's.
// Waits run the loop until a condition holds (bounded by kPatience).
#include "net/api/api_server.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/logger.h"
#include "core/base/status_matchers.h"
#include "core/proto/api.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/api/api_test_util.h"
#include "net/api/client_protocol.h"
#include "net/api/client_protocol.pb.h"
#include "net/loop/event_loop.h"
#include "net/transport/frame.h"
#include "net/transport/socket.h"
#include "net/transport/tcp_transport.h"
#include "net/transport/transport_test_util.h"

namespace blixard::net {
namespace {

using ::blixard::net::testing::CallFrame;
using ::blixard::net::testing::HelloFrame;
using ::blixard::net::testing::kTestClusterId;
using ::blixard::net::testing::NewLoop;
using ::blixard::net::testing::NewServer;
using ::blixard::net::testing::NewTransport;
using ::blixard::net::testing::PutRequest;
using ::blixard::net::testing::RawClient;
using ::blixard::net::testing::Response;
using ::blixard::net::testing::RunUntil;
using ::blixard::net::testing::TestOptions;
using ::blixard::net::testing::TestServerOptions;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A server whose handler keeps every reply for the test to run.
class ApiServerTest : public ::testing::Test {
 protected:
  struct Held {
    api::ClientRequest request;
    ClientReplyFn reply;
  };

  void SetUp() override { Start(TestServerOptions(&logger_)); }
  void TearDown() override {
    if (server_ != nullptr) server_->CheckInvariants();
    loop_->CheckInvariants();
  }

  void Start(ApiServerOptions options) {
    server_.reset();
    server_ = NewServer(loop_.get(), std::move(options),
                        [this](api::ClientRequest request, ClientReplyFn reply) {
                          held_.push_back({std::move(request), std::move(reply)});
                          if (on_call_) on_call_();
                        });
  }

  uint16_t port() const { return server_->port(); }
  const ApiServerCounters& counters() const { return server_->counters(); }

  std::vector<api::ClientReply> ReadReplies(RawClient& client, size_t count) {
    std::vector<api::ClientReply> replies;
    EXPECT_TRUE(RunUntil(*loop_, [&] {
      client.ReadReplies(&replies);
      return replies.size() >= count;
    })) << server_->DebugString();
    return replies;
  }

  // A raw client sends `bytes`: the server must close it for `reason`,
  // count it once, log it with `logged`, and hand nothing more to the
  // handler; afterwards it still serves a good client.
  void ExpectRefused(const std::string& bytes, ApiCloseReason reason,
                     absl::string_view logged) {
    const uint64_t before = counters().closed_by(reason);
    const size_t held = held_.size();
    logger_.TakeLines();
    RawClient bad(port());
    bad.Write(bytes);
    ASSERT_TRUE(RunUntil(*loop_, [&] {
      return counters().closed_by(reason) == before + 1 && bad.ClosedByPeer();
    })) << ApiCloseReasonName(reason) << "\n" << server_->DebugString();
    EXPECT_EQ(server_->connections(), 0u);
    const std::string lines = absl::StrJoin(logger_.lines(), "\n");
    EXPECT_THAT(lines, HasSubstr(absl::StrCat("(", ApiCloseReasonName(reason),
                                              ")")));
    EXPECT_THAT(lines, HasSubstr(std::string(logged)));
    EXPECT_EQ(held_.size(), held) << "a refused call reached the handler";
    server_->CheckInvariants();

    RawClient good(port());
    good.Write(CallFrame(1, PutRequest("k", "v")));
    ASSERT_TRUE(RunUntil(*loop_, [&] { return held_.size() == held + 1; }));
    held_.back().reply(Response(api::ClientResponse::STATUS_OK));
    std::vector<api::ClientReply> replies = ReadReplies(good, 1);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].call_id(), 1u);
  }

  CapturingLogger logger_;
  std::unique_ptr<EventLoop> loop_ = NewLoop();
  std::vector<Held> held_;
  std::function<void()> on_call_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ApiServerTest, ABoundPortIsReported) {
  EXPECT_NE(port(), 0);
  EXPECT_EQ(server_->address().host, "127.0.0.1");
  EXPECT_THAT(absl::StrJoin(logger_.lines(), "\n"),
              HasSubstr(absl::StrCat("serving clients on 127.0.0.1:", port())));
}

TEST_F(ApiServerTest, PipelinedCallsAreAnsweredOutOfOrder) {
  RawClient client(port());
  // Three calls in one write: the server takes them all before any reply.
  client.Write(CallFrame(11, PutRequest("a", "1")) +
               CallFrame(12, PutRequest("b", "2")) +
               CallFrame(13, PutRequest("c", "3")));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return held_.size() == 3; }));
  EXPECT_EQ(server_->calls_in_flight(), 3u);
  EXPECT_EQ(held_[0].request.command().kv_put().key(), "a");
  EXPECT_EQ(held_[2].request.command().kv_put().key(), "c");
  server_->CheckInvariants();

  // Answered last first; each reply names its own call.
  for (size_t i : {2u, 0u, 1u}) {
    api::ClientResponse response = Response(api::ClientResponse::STATUS_OK);
    response.set_index(100 + i);
    held_[i].reply(response);
  }
  std::vector<api::ClientReply> replies = ReadReplies(client, 3);
  ASSERT_EQ(replies.size(), 3u);
  std::vector<uint64_t> order;
  for (const api::ClientReply& reply : replies) {
    order.push_back(reply.call_id());
    EXPECT_EQ(reply.response().index(), 100 + (reply.call_id() - 11));
  }
  EXPECT_THAT(order, ElementsAre(13, 11, 12));
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  EXPECT_EQ(counters().calls, 3u);
  EXPECT_EQ(counters().replies, 3u);
}

TEST_F(ApiServerTest, AReplyAtOnceFromTheHandlerIsWritten) {
  on_call_ = [this] {
    held_.back().reply(Response(api::ClientResponse::STATUS_REJECTED, 0, "no"));
  };
  RawClient client(port());
  client.Write(CallFrame(5, PutRequest("k", "v")));
  std::vector<api::ClientReply> replies = ReadReplies(client, 1);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].call_id(), 5u);
  EXPECT_EQ(replies[0].response().status(),
            api::ClientResponse::STATUS_REJECTED);
  EXPECT_EQ(replies[0].response().error(), "no");
}

TEST_F(ApiServerTest, AReplyAfterItsConnectionClosedIsDropped) {
  {
    RawClient client(port());
    client.Write(CallFrame(1, PutRequest("k", "v")));
    ASSERT_TRUE(RunUntil(*loop_, [&] { return held_.size() == 1; }));
  }  // the client goes away with its call in flight
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return counters().closed_by(ApiCloseReason::kClientClosed) == 1;
  }));
  EXPECT_EQ(server_->connections(), 0u);
  // A new connection (which may reuse the fd number) must not get it.
  RawClient other(port());
  other.Write(CallFrame(1, PutRequest("x", "y")));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return held_.size() == 2; }));

  held_[0].reply(Response(api::ClientResponse::STATUS_OK));
  EXPECT_EQ(counters().replies_dropped, 1u);
  EXPECT_EQ(counters().replies, 0u);
  server_->CheckInvariants();

  held_[1].reply(Response(api::ClientResponse::STATUS_UNKNOWN));
  std::vector<api::ClientReply> replies = ReadReplies(other, 1);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].response().status(), api::ClientResponse::STATUS_UNKNOWN);
}

TEST_F(ApiServerTest, AReplyAfterStopOrDestructionIsDropped) {
  RawClient client(port());
  client.Write(CallFrame(1, PutRequest("a", "1")) +
               CallFrame(2, PutRequest("b", "2")));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return held_.size() == 2; }));
  server_->Stop();
  EXPECT_TRUE(server_->stopped());
  EXPECT_EQ(server_->connections(), 0u);
  EXPECT_EQ(counters().closed_by(ApiCloseReason::kStopped), 1u);
  held_[0].reply(Response(api::ClientResponse::STATUS_OK));
  EXPECT_EQ(counters().replies_dropped, 1u);
  server_->CheckInvariants();
  ASSERT_TRUE(RunUntil(*loop_, [&] { return client.ClosedByPeer(); }));
  // The port refuses new clients.
  absl::StatusOr<Dialing> dialing = StartConnect({"127.0.0.1", port()});
  if (dialing.ok() && !dialing->connected) {
    ASSERT_TRUE(RunUntil(*loop_, [&] {
      return !FinishConnect(dialing->fd.get(), {"127.0.0.1", port()}).ok();
    }));
  } else {
    EXPECT_FALSE(dialing.ok());
  }

  server_.reset();
  // The server is gone: the reply it left behind is a no-op.
  held_[1].reply(Response(api::ClientResponse::STATUS_OK));
}

TEST_F(ApiServerTest, TheHandlerMayStopTheServer) {
  on_call_ = [this] {
    server_->Stop();
    held_.back().reply(Response(api::ClientResponse::STATUS_OK));
  };
  RawClient client(port());
  client.Write(CallFrame(1, PutRequest("a", "1")) +
               CallFrame(2, PutRequest("b", "2")));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return client.ClosedByPeer(); }));
  EXPECT_EQ(held_.size(), 1u);  // the second call died with the connection
  EXPECT_EQ(counters().replies_dropped, 1u);
  EXPECT_TRUE(server_->stopped());
}

TEST_F(ApiServerTest, CallsBeyondTheInFlightLimitAreRejectedAtOnce) {
  ApiServerOptions options = TestServerOptions(&logger_);
  options.calls_in_flight_max = 2;
  Start(std::move(options));
  RawClient client(port());
  client.Write(CallFrame(1, PutRequest("a", "1")) +
               CallFrame(2, PutRequest("b", "2")) +
               CallFrame(3, PutRequest("c", "3")));
  std::vector<api::ClientReply> replies = ReadReplies(client, 1);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].call_id(), 3u);
  EXPECT_EQ(replies[0].response().status(),
            api::ClientResponse::STATUS_REJECTED);
  EXPECT_THAT(replies[0].response().error(),
              HasSubstr("calls_in_flight_max"));
  EXPECT_EQ(held_.size(), 2u);
  EXPECT_EQ(counters().calls_over_limit, 1u);
  server_->CheckInvariants();
  // Once one is answered, another may come.
  held_[0].reply(Response(api::ClientResponse::STATUS_OK));
  client.Write(CallFrame(4, PutRequest("d", "4")));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return held_.size() == 3; }));
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(ApiServerTest, ConnectionsBeyondTheLimitAreClosedAtAccept) {
  ApiServerOptions options = TestServerOptions(&logger_);
  options.connections_max = 1;
  Start(std::move(options));
  RawClient first(port());
  first.Write(CallFrame(1, PutRequest("a", "1")));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return held_.size() == 1; }));
  RawClient second(port());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return second.ClosedByPeer(); }));
  EXPECT_EQ(counters().closed_by(ApiCloseReason::kTooManyConnections), 1u);
  EXPECT_THAT(absl::StrJoin(logger_.lines(), "\n"),
              HasSubstr("(connections_max)"));
  held_[0].reply(Response(api::ClientResponse::STATUS_OK));
  EXPECT_EQ(ReadReplies(first, 1).size(), 1u);
}

TEST_F(ApiServerTest, ASilentConnectionIsClosedAfterTheHandshakeTimeout) {
  ApiServerOptions options = TestServerOptions(&logger_);
  options.handshake_timeout_us = 20 * kMicrosPerMilli;
  Start(std::move(options));
  RawClient client(port());
  client.Write("BLX");  // not even a whole header
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return counters().closed_by(ApiCloseReason::kHandshakeTimeout) == 1;
  }));
  EXPECT_TRUE(RunUntil(*loop_, [&] { return client.ClosedByPeer(); }));
}

TEST_F(ApiServerTest, AnIdleConnectionIsClosedButNotOneWithACallInFlight) {
  ApiServerOptions options = TestServerOptions(&logger_);
  options.idle_timeout_us = 20 * kMicrosPerMilli;
  Start(std::move(options));
  RawClient busy(port());
  busy.Write(CallFrame(1, PutRequest("a", "1")));
  RawClient idle(port());
  idle.Write(CallFrame(1, PutRequest("b", "2")));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return held_.size() == 2; }));
  held_[1].reply(Response(api::ClientResponse::STATUS_OK));
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return counters().closed_by(ApiCloseReason::kIdleTimeout) == 1;
  }));
  EXPECT_EQ(server_->connections(), 1u);  // `busy` waits for its reply
  held_[0].reply(Response(api::ClientResponse::STATUS_OK));
  EXPECT_EQ(ReadReplies(busy, 1).size(), 1u);
}

TEST_F(ApiServerTest, AClientThatStopsReadingIsClosedWhenItsRepliesPileUp) {
  on_call_ = [this] {
    // ~1 MiB answers: the socket buffers take a few; the queue the rest.
    held_.back().reply(Response(api::ClientResponse::STATUS_REJECTED, 0,
                                std::string(size_t{1} << 20, 'x')));
  };
  RawClient client(port());  // never reads
  std::string calls;
  for (uint64_t id = 1; id <= 64; ++id) {
    calls += CallFrame(id, PutRequest("k", "v"));
  }
  client.Write(calls);
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return counters().closed_by(ApiCloseReason::kOutputFull) == 1;
  })) << server_->DebugString();
  EXPECT_THAT(absl::StrJoin(logger_.lines(), "\n"),
              HasSubstr("above output_bytes_max"));
  EXPECT_EQ(counters().replies_dropped, 1u);
}

TEST_F(ApiServerTest, GarbageIsRefused) {
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\r\n\r\n", ApiCloseReason::kBadFrame,
                "bad frame magic");
}

TEST_F(ApiServerTest, APeerProtocolFrameIsRefusedAsTheWrongProtocol) {
  ExpectRefused(HelloFrame(kTestClusterId, 2, 1), ApiCloseReason::kWrongProtocol,
                "a peer-protocol frame");
}

TEST_F(ApiServerTest, AnOversizedLengthIsRefusedBeforeItsBody) {
  std::string frame = CallFrame(1, PutRequest("k", "v"));
  const uint32_t length = kCallBodyBytesDefault + 1;
  for (int i = 0; i < 4; ++i) frame[8 + i] = static_cast<char>(length >> (8 * i));
  ExpectRefused(frame.substr(0, kFrameHeaderBytes),
                ApiCloseReason::kFrameTooLarge, "above the limit");
}

TEST_F(ApiServerTest, ACorruptBodyIsRefused) {
  std::string frame = CallFrame(1, PutRequest("k", "v"));
  frame[kFrameHeaderBytes + 3] ^= 0x10;
  ExpectRefused(frame, ApiCloseReason::kBadChecksum, "CRC-32");
}

TEST_F(ApiServerTest, AReplyFrameSentToTheServerIsRefused) {
  api::ClientReply reply;
  reply.set_call_id(1);
  ExpectRefused(EncodeReplyFrame(reply), ApiCloseReason::kUnexpectedFrame,
                "a client_reply frame sent to a server");
}

TEST_F(ApiServerTest, ABodyThatDoesNotParseIsRefused) {
  ExpectRefused(EncodeFrame(FrameType::kClientCall, "\xff\xff\xff"),
                ApiCloseReason::kBadBody, "does not parse");
}

TEST_F(ApiServerTest, CallIdZeroIsRefused) {
  api::ClientCall call;
  *call.mutable_request() = PutRequest("k", "v");
  ExpectRefused(EncodeFrame(FrameType::kClientCall, call.SerializeAsString()),
                ApiCloseReason::kBadBody, "call id 0");
}

TEST_F(ApiServerTest, ACallIdAlreadyInFlightIsRefused) {
  RawClient client(port());
  client.Write(CallFrame(9, PutRequest("a", "1")) +
               CallFrame(9, PutRequest("b", "2")));
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return counters().closed_by(ApiCloseReason::kDuplicateCallId) == 1;
  }));
  EXPECT_EQ(held_.size(), 1u);
  EXPECT_THAT(absl::StrJoin(logger_.lines(), "\n"),
              HasSubstr("call id 9 is already in flight"));
  // The first call's reply finds no connection.
  held_[0].reply(Response(api::ClientResponse::STATUS_OK));
  EXPECT_EQ(counters().replies_dropped, 1u);
}

TEST_F(ApiServerTest, APeerDialingTheClientPortIsRefused) {
  // A real transport pointed at this server's port, as a misconfigured
  // address book would: its HELLO is refused as the wrong protocol.
  NullLogger quiet;
  std::unique_ptr<TcpTransport> transport =
      NewTransport(loop_.get(), TestOptions(NodeId(2), &quiet));
  ASSERT_THAT(transport->AddPeer(NodeId(1), {"127.0.0.1", port()}),
              ::blixard::testing::IsOk());
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return counters().closed_by(ApiCloseReason::kWrongProtocol) >= 1;
  }));
  EXPECT_EQ(held_.size(), 0u);
}

TEST_F(ApiServerTest, OptionsAreValidated) {
  ApiServerOptions options = TestServerOptions(&logger_);
  EXPECT_THAT(options.Validate(), ::blixard::testing::IsOk());
  options.calls_in_flight_max = 0;
  EXPECT_THAT(options.Validate(),
              ::blixard::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("calls_in_flight_max")));
  options = TestServerOptions(&logger_);
  options.output_bytes_max = 1024;
  EXPECT_THAT(options.Validate(),
              ::blixard::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("output_bytes_max")));
  options = TestServerOptions(&logger_);
  options.listen.host = "localhost";
  EXPECT_THAT(options.Validate(),
              ::blixard::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  options = TestServerOptions(&logger_);
  options.logger = nullptr;
  EXPECT_THAT(options.Validate(),
              ::blixard::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("logger")));
}

TEST_F(ApiServerTest, APortInUseIsAnError) {
  ApiServerOptions options = TestServerOptions(&logger_);
  options.listen.port = port();
  absl::StatusOr<std::unique_ptr<ApiServer>> second = ApiServer::Create(
      loop_.get(), std::move(options),
      [](api::ClientRequest, ClientReplyFn) {});
  EXPECT_THAT(second.status(),
              ::blixard::testing::StatusIs(absl::StatusCode::kAlreadyExists,
                                           HasSubstr("bind")));
}

}  // namespace
}  // namespace blixard::net
