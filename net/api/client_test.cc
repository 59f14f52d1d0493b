// Client against fake nodes (api_test_util.h FakeNode: an ApiServer with a
// scripted handler, no Host): leader discovery, redirects, forwarding,
// retries with the same request ids, failover, and the errors it returns.
// The fake nodes run on the client's loop, so one thread runs both and
// every test is bounded by the client's own deadline; nothing sleeps and
// nothing asserts on time.
#include "net/api/client.h"

#include <memory>
#include <string>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/logger.h"
#include "core/base/status_matchers.h"
#include "core/proto/api.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/api/api_server.h"
#include "net/api/api_test_util.h"
#include "net/loop/event_loop.h"
#include "net/transport/tcp_transport.h"
#include "net/transport/transport_test_util.h"

namespace blixard::net {
namespace {

using ::blixard::net::testing::FakeNode;
using ::blixard::net::testing::NewFakeNode;
using ::blixard::net::testing::NewLoop;
using ::blixard::net::testing::NewServer;
using ::blixard::net::testing::NewTransport;
using ::blixard::net::testing::PutRequest;
using ::blixard::net::testing::RefusingPort;
using ::blixard::net::testing::Response;
using ::blixard::net::testing::TestOptions;
using ::blixard::net::testing::TestServerOptions;
using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr auto kFollower = api::NodeStatus::ROLE_FOLLOWER;
constexpr auto kLeader = api::NodeStatus::ROLE_LEADER;

class ClientTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (client_ != nullptr) client_->CheckInvariants();
    for (const auto& node : nodes_) {
      if (!node->server->stopped()) node->server->CheckInvariants();
    }
    loop_->CheckInvariants();
  }

  FakeNode& AddNode(uint64_t id, api::NodeStatus::Role role, uint64_t leader,
                    uint64_t term = 1) {
    nodes_.push_back(NewFakeNode(loop_.get(), &logger_, id, role, leader, term));
    return *nodes_.back();
  }

  // Short timeouts and backoffs: tests wait on outcomes, so short only
  // makes them quicker; the deadline bounds every test that fails.
  ClientOptions Options(std::vector<std::string> endpoints) {
    ClientOptions options;
    options.endpoints = std::move(endpoints);
    options.call_timeout_us = 2 * kMicrosPerSecond;
    options.deadline_us = 10 * kMicrosPerSecond;
    options.backoff_min_us = kMicrosPerMilli;
    options.backoff_max_us = 10 * kMicrosPerMilli;
    options.seed = 1;
    options.logger = &logger_;
    return options;
  }

  Client& NewClient(ClientOptions options) {
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Create(std::move(options), loop_.get());
    CHECK(client.ok()) << client.status();
    client_ = std::move(*client);
    return *client_;
  }

  // A client of every node added so far, in order.
  Client& NewClientOfAll() {
    std::vector<std::string> endpoints;
    for (const auto& node : nodes_) endpoints.push_back(node->endpoint());
    return NewClient(Options(std::move(endpoints)));
  }

  CapturingLogger logger_{LogLevel::kInfo};
  std::unique_ptr<EventLoop> loop_ = NewLoop();
  std::vector<std::unique_ptr<FakeNode>> nodes_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientTest, AWriteGoesStraightToTheLeaderDiscovery) {
  FakeNode& follower = AddNode(1, kFollower, 2);
  FakeNode& leader = AddNode(2, kLeader, 2);
  Client& client = NewClientOfAll();
  ASSERT_OK_AND_ASSIGN(api::ClientResponse response,
                       client.Call(PutRequest("k", "v")));
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK);
  EXPECT_TRUE(follower.requests.empty());
  ASSERT_EQ(leader.requests.size(), 1u);
  const api::ClientRequest& sent = leader.requests[0];
  EXPECT_FALSE(sent.allow_forward());
  EXPECT_EQ(sent.command().request_id().client_id(), client.client_id());
  EXPECT_EQ(sent.command().request_id().sequence(), 1u);
  EXPECT_EQ(client.endpoint_node_id(0), 1u);
  EXPECT_EQ(client.endpoint_node_id(1), 2u);
  EXPECT_EQ(client.leader_endpoint(), 1u);

  // The next call goes to the known leader without asking again, with the
  // next sequence.
  const uint64_t discoveries = client.counters().discoveries;
  ASSERT_THAT(client.Call(PutRequest("k", "w")), IsOk());
  EXPECT_EQ(client.counters().discoveries, discoveries);
  ASSERT_EQ(leader.requests.size(), 2u);
  EXPECT_EQ(leader.requests[1].command().request_id().sequence(), 2u);
  EXPECT_EQ(client.next_sequence(), 3u);
}

TEST_F(ClientTest, ANotLeaderHintSendsTheCallToTheLeader) {
  // Nobody claims to lead at discovery time (an election just ended), so
  // the client starts at the first endpoint, which knows better by now.
  FakeNode& follower = AddNode(1, kFollower, 0);
  FakeNode& leader = AddNode(2, kFollower, 0);
  follower.answer = [](const api::ClientRequest&, ClientReplyFn reply) {
    reply(Response(api::ClientResponse::STATUS_NOT_LEADER, 2));
  };
  Client& client = NewClientOfAll();
  ASSERT_OK_AND_ASSIGN(api::ClientResponse response,
                       client.Call(PutRequest("k", "v")));
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK);
  ASSERT_EQ(follower.requests.size(), 1u);
  ASSERT_EQ(leader.requests.size(), 1u);
  EXPECT_EQ(client.counters().redirects, 1u);
  EXPECT_EQ(client.leader_endpoint(), 1u);
  // The same write, the same ids, at both.
  EXPECT_EQ(follower.requests[0].command().request_id().sequence(),
            leader.requests[0].command().request_id().sequence());
  EXPECT_EQ(leader.requests[0].command().request_id().client_id(),
            client.client_id());
  EXPECT_FALSE(leader.requests[0].allow_forward());
}

TEST_F(ClientTest, WithNoLeaderKnownTheCallAsksAFollowerToForward) {
  FakeNode& node = AddNode(1, kFollower, 0);
  node.answer = [](const api::ClientRequest& request, ClientReplyFn reply) {
    reply(request.allow_forward()
              ? Response(api::ClientResponse::STATUS_OK)
              : Response(api::ClientResponse::STATUS_NOT_LEADER, 0));
  };
  Client& client = NewClientOfAll();
  ASSERT_OK_AND_ASSIGN(api::ClientResponse response,
                       client.Call(PutRequest("k", "v")));
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK);
  ASSERT_EQ(node.requests.size(), 1u);
  EXPECT_TRUE(node.requests[0].allow_forward());
  // A forwarded answer does not make the follower the leader.
  EXPECT_FALSE(client.leader_endpoint().has_value());
}

TEST_F(ClientTest, UnknownIsRetriedWithTheSameIds) {
  FakeNode& leader = AddNode(1, kLeader, 1);
  leader.answer = [&leader](const api::ClientRequest&, ClientReplyFn reply) {
    reply(leader.requests.size() == 1
              ? Response(api::ClientResponse::STATUS_UNKNOWN, 0, "stepped down")
              : Response(api::ClientResponse::STATUS_OK));
  };
  Client& client = NewClientOfAll();
  ASSERT_OK_AND_ASSIGN(api::ClientResponse response,
                       client.Call(PutRequest("k", "v")));
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK);
  ASSERT_EQ(leader.requests.size(), 2u);
  for (const api::ClientRequest& sent : leader.requests) {
    EXPECT_EQ(sent.command().request_id().client_id(), client.client_id());
    EXPECT_EQ(sent.command().request_id().sequence(), 1u);
  }
  EXPECT_EQ(client.counters().retries, 1u);
  EXPECT_EQ(client.next_sequence(), 2u);
}

TEST_F(ClientTest, AConnectionClosedMidCallIsRetriedElsewhere) {
  FakeNode& leader = AddNode(1, kLeader, 1);
  FakeNode& follower = AddNode(2, kFollower, 1);
  // The leader takes the write and dies before answering.
  leader.answer = [&leader](const api::ClientRequest&, ClientReplyFn) {
    leader.server->Stop();
  };
  Client& client = NewClientOfAll();
  ASSERT_OK_AND_ASSIGN(api::ClientResponse response,
                       client.Call(PutRequest("k", "v")));
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK);
  ASSERT_EQ(leader.requests.size(), 1u);
  ASSERT_EQ(follower.requests.size(), 1u);
  const api::ClientRequest& retry = follower.requests[0];
  EXPECT_EQ(retry.command().request_id().client_id(), client.client_id());
  EXPECT_EQ(retry.command().request_id().sequence(),
            leader.requests[0].command().request_id().sequence());
  // Its status names a leader that no longer answers: the follower is
  // asked to forward.
  EXPECT_TRUE(retry.allow_forward());
  EXPECT_GE(client.counters().connection_errors, 1u);
}

TEST_F(ClientTest, ACallWithNoReplyInTimeIsRetriedAndTheLateReplyIsDropped) {
  FakeNode& leader = AddNode(1, kLeader, 1);
  std::vector<ClientReplyFn> held;
  leader.answer = [&](const api::ClientRequest&, ClientReplyFn reply) {
    if (held.empty()) {
      held.push_back(std::move(reply));  // a paused node
    } else {
      reply(Response(api::ClientResponse::STATUS_OK));
    }
  };
  ClientOptions options = Options({leader.endpoint()});
  options.call_timeout_us = 50 * kMicrosPerMilli;
  Client& client = NewClient(std::move(options));
  ASSERT_OK_AND_ASSIGN(api::ClientResponse response,
                       client.Call(PutRequest("k", "v")));
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK);
  EXPECT_EQ(client.counters().timeouts, 1u);
  ASSERT_EQ(leader.requests.size(), 2u);
  EXPECT_EQ(leader.requests[0].command().request_id().sequence(),
            leader.requests[1].command().request_id().sequence());
  // The client gave up on that connection: the late reply goes nowhere.
  ASSERT_TRUE(::blixard::net::testing::RunUntil(*loop_, [&] {
    return leader.server->connections() == 1;
  }));
  held[0](Response(api::ClientResponse::STATUS_OK));
  EXPECT_EQ(leader.server->counters().replies_dropped, 1u);
}

TEST_F(ClientTest, RejectedIsFinal) {
  FakeNode& leader = AddNode(1, kLeader, 1);
  leader.answer = [](const api::ClientRequest&, ClientReplyFn reply) {
    reply(Response(api::ClientResponse::STATUS_REJECTED, 0, "bad key"));
  };
  Client& client = NewClientOfAll();
  ASSERT_OK_AND_ASSIGN(api::ClientResponse response,
                       client.Call(PutRequest("k", "v")));
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_REJECTED);
  EXPECT_EQ(response.error(), "bad key");
  EXPECT_EQ(leader.requests.size(), 1u);
  EXPECT_EQ(client.counters().retries, 0u);
}

TEST_F(ClientTest, AllEndpointsDownIsUnavailableNamingThem) {
  RefusingPort first;
  RefusingPort second;
  ClientOptions options = Options({first.endpoint(), second.endpoint()});
  options.deadline_us = 200 * kMicrosPerMilli;
  Client& client = NewClient(std::move(options));
  EXPECT_THAT(client.Call(PutRequest("k", "v")),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("no endpoint answered"),
                             HasSubstr(first.endpoint() + ": connect"),
                             HasSubstr(second.endpoint() + ": connect"),
                             HasSubstr("refused"),
                             HasSubstr("may or may not have been applied"))));
  EXPECT_GT(client.counters().retries, 0u);
}

TEST_F(ClientTest, NoLeaderUntilTheDeadlineIsDeadlineExceeded) {
  FakeNode& node = AddNode(1, kFollower, 0);
  node.answer = [](const api::ClientRequest&, ClientReplyFn reply) {
    reply(Response(api::ClientResponse::STATUS_NOT_LEADER, 0, "no leader"));
  };
  ClientOptions options = Options({node.endpoint()});
  options.deadline_us = 100 * kMicrosPerMilli;
  Client& client = NewClient(std::move(options));
  EXPECT_THAT(client.Call(PutRequest("k", "v")),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       AllOf(HasSubstr("STATUS_NOT_LEADER"),
                             HasSubstr("no leader"),
                             HasSubstr(absl::StrCat("client id ",
                                                    client.client_id(),
                                                    ", sequence 1")))));
  EXPECT_GE(node.requests.size(), 1u);
}

TEST_F(ClientTest, AReadCarriesNoRequestId) {
  FakeNode& leader = AddNode(1, kLeader, 1);
  Client& client = NewClientOfAll();
  api::ClientRequest read;
  read.mutable_query();
  ASSERT_THAT(client.Call(read), IsOk());
  ASSERT_EQ(leader.requests.size(), 1u);
  EXPECT_TRUE(leader.requests[0].has_query());
  EXPECT_EQ(client.next_sequence(), 1u);
}

TEST_F(ClientTest, CallRefusesRequestsItCannotSend) {
  AddNode(1, kLeader, 1);
  Client& client = NewClientOfAll();
  api::ClientRequest status;
  status.mutable_status();
  EXPECT_THAT(client.Call(status),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("NodeStatusAt")));
  EXPECT_THAT(client.Call(api::ClientRequest()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no operation")));
  api::ClientRequest stamped = PutRequest("k", "v");
  stamped.mutable_command()->mutable_request_id()->set_sequence(9);
  EXPECT_THAT(client.Call(stamped),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("request_id")));
  EXPECT_THAT(client.Call(PutRequest("k", std::string(kCallBodyBytesDefault, 'v'))),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("limit of a call")));
  EXPECT_EQ(client.counters().attempts, 0u);
}

TEST_F(ClientTest, NodeStatusAtAsksOneEndpoint) {
  FakeNode& node = AddNode(4, kLeader, 4, 7);
  Client& client = NewClientOfAll();
  ASSERT_OK_AND_ASSIGN(api::NodeStatus status, client.NodeStatusAt(0));
  EXPECT_EQ(status.node_id(), 4u);
  EXPECT_EQ(status.term(), 7u);
  EXPECT_EQ(status.role(), kLeader);
  EXPECT_EQ(status.client_address(), node.endpoint());
  EXPECT_EQ(client.endpoint_node_id(0), 4u);
  EXPECT_TRUE(node.requests.empty());  // answered by the node itself
}

TEST_F(ClientTest, NodeStatusAtADeadEndpointIsUnavailable) {
  RefusingPort dead;
  Client& client = NewClient(Options({dead.endpoint()}));
  EXPECT_THAT(client.NodeStatusAt(0),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(dead.endpoint())));
}

TEST_F(ClientTest, APeerPortRefusesTheClient) {
  // A client pointed at a node's peer port: the transport closes it at the
  // first header and says why; the client reports the endpoint.
  CapturingLogger transport_log;
  std::unique_ptr<TcpTransport> transport =
      NewTransport(loop_.get(), TestOptions(NodeId(1), &transport_log));
  ClientOptions options = Options(
      {absl::StrCat("127.0.0.1:", transport->listen_port())});
  options.deadline_us = 100 * kMicrosPerMilli;
  Client& client = NewClient(std::move(options));
  EXPECT_THAT(client.Call(PutRequest("k", "v")),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("is this its client port?")));
  EXPECT_GE(transport->counters().closed_by(CloseReason::kBadFrame), 1u);
  EXPECT_THAT(absl::StrJoin(transport_log.lines(), "\n"),
              HasSubstr("a client-protocol frame"));
}

TEST_F(ClientTest, OptionsAreValidated) {
  ClientOptions options = Options({"127.0.0.1:1"});
  EXPECT_THAT(options.Validate(), IsOk());
  options.endpoints = {};
  EXPECT_THAT(options.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
  options.endpoints = {"localhost:7001"};
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("numeric IPv4")));
  options.endpoints = {"127.0.0.1"};
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("HOST:PORT")));
  options.endpoints = {"127.0.0.1:0"};
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("port")));
  options.endpoints = {"127.0.0.1:5", "127.0.0.1:5"};
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
  options = Options({"127.0.0.1:1"});
  options.next_sequence = 0;
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("next_sequence")));
  options = Options({"127.0.0.1:1"});
  options.backoff_min_us = options.backoff_max_us + 1;
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("backoff")));
}

TEST_F(ClientTest, TheClientIdAndSequenceCanBeGiven) {
  FakeNode& leader = AddNode(1, kLeader, 1);
  ClientOptions options = Options({leader.endpoint()});
  options.client_id = 77;
  options.next_sequence = 40;
  Client& client = NewClient(std::move(options));
  ASSERT_THAT(client.Call(PutRequest("k", "v")), IsOk());
  ASSERT_EQ(leader.requests.size(), 1u);
  EXPECT_EQ(leader.requests[0].command().request_id().client_id(), 77u);
  EXPECT_EQ(leader.requests[0].command().request_id().sequence(), 40u);
}

TEST(ClientOwnLoopTest, DrawsARandomClientIdAndServesAServerOnAnotherThread) {
  // The shape of the CLI: the client on its own loop; the node elsewhere
  // (here a thread with its own loop, as in a real process).
  std::mutex mu;
  std::condition_variable ready;
  uint16_t port = 0;
  EventLoop* server_loop = nullptr;
  // The loop's contract: a thread that calls Stop() must be done with the
  // loop before it is destroyed.
  bool stop_sent = false;
  std::vector<api::ClientRequest> seen;  // server thread until joined
  std::thread server_thread([&] {
    NullLogger quiet;
    std::unique_ptr<EventLoop> loop = NewLoop();
    std::unique_ptr<ApiServer> server = NewServer(
        loop.get(), TestServerOptions(&quiet),
        ServeWithNodeStatus(
            [] {
              api::NodeStatus status;
              status.set_node_id(1);
              status.set_role(kLeader);
              status.set_leader_id(1);
              return status;
            },
            [&seen](api::ClientRequest request, ClientReplyFn reply) {
              seen.push_back(std::move(request));
              reply(Response(api::ClientResponse::STATUS_OK));
            }));
    {
      std::lock_guard<std::mutex> lock(mu);
      port = server->port();
      server_loop = loop.get();
    }
    ready.notify_one();
    loop->Run();  // until the test's Stop()
    {
      std::unique_lock<std::mutex> lock(mu);
      ready.wait(lock, [&] { return stop_sent; });
    }
    server.reset();
  });
  uint16_t server_port = 0;
  {
    std::unique_lock<std::mutex> lock(mu);
    ready.wait(lock, [&] { return port != 0; });
    server_port = port;
  }

  ClientOptions options;
  options.endpoints = {absl::StrCat("127.0.0.1:", server_port)};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client,
                       Client::Create(std::move(options)));
  EXPECT_NE(client->client_id(), 0u);
  ASSERT_OK_AND_ASSIGN(api::ClientResponse first,
                       client->Call(PutRequest("a", "1")));
  EXPECT_EQ(first.status(), api::ClientResponse::STATUS_OK);
  ASSERT_THAT(client->Call(PutRequest("b", "2")), IsOk());
  ASSERT_OK_AND_ASSIGN(api::NodeStatus status, client->NodeStatusAt(0));
  EXPECT_EQ(status.node_id(), 1u);
  client->CheckInvariants();
  const uint64_t client_id = client->client_id();
  client.reset();

  {
    std::lock_guard<std::mutex> lock(mu);
    server_loop->Stop();  // any thread
    stop_sent = true;
  }
  ready.notify_all();
  server_thread.join();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].command().request_id().client_id(), client_id);
  EXPECT_EQ(seen[1].command().request_id().sequence(), 2u);
}

}  // namespace
}  // namespace blixard::net
