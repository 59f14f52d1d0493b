#include "net/api/kv_load.h"

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/base/logger.h"
#include "core/base/status_matchers.h"
#include "core/proto/api.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/api/api_test_util.h"
#include "net/loop/event_loop.h"
#include "net/transport/transport_test_util.h"

namespace blixard::net {
namespace {

using ::blixard::net::testing::FakeNode;
using ::blixard::net::testing::NewFakeNode;
using ::blixard::net::testing::NewLoop;
using ::blixard::net::testing::Response;
using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kLeader = api::NodeStatus::ROLE_LEADER;

// The fake leader and the load share one loop: the load runs it, and the
// fake answers inside it. No sleeps: runs are bounded by ops or by a short
// duration, and nothing asserts how fast anything went.
class KvLoadTest : public ::testing::Test {
 protected:
  KvLoadTest() : loop_(NewLoop()) {
    leader_ = NewFakeNode(loop_.get(), &logger_, 1, kLeader, 1);
  }

  void TearDown() override {
    leader_->server->CheckInvariants();
    loop_->CheckInvariants();
  }

  KvLoadOptions Options() {
    KvLoadOptions options;
    options.endpoint = leader_->server->address();
    options.loop = loop_.get();
    options.timeout_us = 30 * kMicrosPerSecond;
    return options;
  }

  NullLogger logger_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<FakeNode> leader_;
};

TEST_F(KvLoadTest, ClosedLoopPutsWriteEveryIndexedKeyOnce) {
  KvLoadOptions options = Options();
  options.clients = 4;
  options.ops = 50;
  options.key_bytes = 20;
  options.value_bytes = 7;
  ASSERT_OK_AND_ASSIGN(KvLoadResult result, RunKvLoad(options));
  EXPECT_EQ(result.sent, 50u);
  EXPECT_EQ(result.ok, 50u);
  EXPECT_EQ(result.failed, 0u);
  EXPECT_EQ(result.latencies_us.size(), 50u);
  ASSERT_EQ(leader_->requests.size(), 50u);
  std::set<std::string> keys;
  std::set<std::pair<uint64_t, uint64_t>> ids;
  std::set<uint64_t> sessions;
  for (const api::ClientRequest& request : leader_->requests) {
    const cluster::Command& command = request.command();
    EXPECT_EQ(command.kv_put().value(), std::string(7, '\0'));
    keys.insert(command.kv_put().key());
    ids.insert({command.request_id().client_id(), command.request_id().sequence()});
    sessions.insert(command.request_id().client_id());
  }
  std::set<std::string> want;
  for (uint64_t i = 0; i < 50; ++i) want.insert(IndexedKey(i, 20));
  EXPECT_EQ(keys, want);
  EXPECT_EQ(ids.size(), 50u);       // every write its own request id
  EXPECT_EQ(sessions.size(), 4u);   // one session per client
  EXPECT_EQ(IndexedKey(7, 20), "k000000000000007....");
}

TEST_F(KvLoadTest, GetsReadKeysOfTheKeySpace) {
  leader_->answer = [](const api::ClientRequest&, ClientReplyFn reply) {
    api::ClientResponse response = Response(api::ClientResponse::STATUS_OK);
    response.mutable_query_result()->set_code(cluster::RESULT_OK);
    reply(response);
  };
  KvLoadOptions options = Options();
  options.op = KvLoadOptions::Op::kGet;
  options.clients = 3;
  options.ops = 40;
  options.key_space = 5;
  ASSERT_OK_AND_ASSIGN(KvLoadResult result, RunKvLoad(options));
  EXPECT_EQ(result.ok, 40u);
  std::set<std::string> space;
  for (uint64_t i = 0; i < 5; ++i) space.insert(IndexedKey(i, 16));
  for (const api::ClientRequest& request : leader_->requests) {
    EXPECT_TRUE(space.count(request.query().kv_get())) << request.query().kv_get();
  }
}

TEST_F(KvLoadTest, PacedRunIsCheckPerfShapedAndStopsAtItsDuration) {
  KvLoadOptions options = Options();
  options.clients = 3;
  options.rate_per_second = 1000;
  options.duration_us = 50 * kMicrosPerMilli;
  options.keys = KvLoadOptions::Keys::kRandom;
  options.key_bytes = 256;
  options.value_bytes = 1024;
  ASSERT_OK_AND_ASSIGN(KvLoadResult result, RunKvLoad(options));
  EXPECT_GT(result.ok, 0u);
  EXPECT_EQ(result.ok, result.sent);
  // Never ahead of the schedule: one token at start, one a millisecond,
  // and at most the bucket's lag (2 ms) caught up at the end.
  EXPECT_LE(result.sent, 1u + 50u + 2u);
  std::set<std::string> keys;
  for (const api::ClientRequest& request : leader_->requests) {
    const std::string& key = request.command().kv_put().key();
    EXPECT_EQ(key.size(), 256u);
    EXPECT_EQ(key.rfind("check-perf/", 0), 0u) << key;
    EXPECT_EQ(request.command().kv_put().value().size(), 1024u);
    keys.insert(key);
  }
  EXPECT_EQ(keys.size(), leader_->requests.size());  // every key new
}

TEST_F(KvLoadTest, QueueHoldsAtMostOneRequestPerClientAndDrains) {
  // The leader holds every reply until 60 ms after the first request, well
  // after the 30 ms run: 2 requests in flight, 2 queued, then the generator
  // waits (etcd's channel of `clients`) and closes at the duration; the
  // queue drains when the replies come.
  std::vector<ClientReplyFn> held;
  bool released = false;
  size_t requests_when_released = 0;
  leader_->answer = [&](const api::ClientRequest&, ClientReplyFn reply) {
    if (released) {
      reply(Response(api::ClientResponse::STATUS_OK));
      return;
    }
    if (held.empty()) {
      loop_->AddTimerAt(loop_->clock().NowMicros() + 60 * kMicrosPerMilli, [&] {
        released = true;
        requests_when_released = leader_->requests.size();
        for (ClientReplyFn& fn : held) fn(Response(api::ClientResponse::STATUS_OK));
        held.clear();
      });
    }
    held.push_back(std::move(reply));
  };
  KvLoadOptions options = Options();
  options.clients = 2;
  options.rate_per_second = 1000;
  options.duration_us = 30 * kMicrosPerMilli;
  ASSERT_OK_AND_ASSIGN(KvLoadResult result, RunKvLoad(options));
  EXPECT_EQ(requests_when_released, 2u);
  EXPECT_EQ(result.sent, 4u);
  EXPECT_EQ(result.ok, 4u);
}

TEST_F(KvLoadTest, FailedRepliesAreCountedByError) {
  leader_->answer = [](const api::ClientRequest&, ClientReplyFn reply) {
    reply(Response(api::ClientResponse::STATUS_REJECTED, 0, "over the limit"));
  };
  KvLoadOptions options = Options();
  options.clients = 2;
  options.ops = 10;
  ASSERT_OK_AND_ASSIGN(KvLoadResult result, RunKvLoad(options));
  EXPECT_EQ(result.ok, 0u);
  EXPECT_EQ(result.failed, 10u);
  EXPECT_TRUE(result.latencies_us.empty());
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors.begin()->first, "STATUS_REJECTED over the limit");
  EXPECT_EQ(result.errors.begin()->second, 10u);
}

TEST_F(KvLoadTest, NotLeaderEndsTheRun) {
  leader_->answer = [](const api::ClientRequest&, ClientReplyFn reply) {
    reply(Response(api::ClientResponse::STATUS_NOT_LEADER, 2));
  };
  KvLoadOptions options = Options();
  options.ops = 5;
  EXPECT_THAT(RunKvLoad(options),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("not the leader (leader: node 2)")));
}

TEST_F(KvLoadTest, WithForwardNotLeaderIsAFailedRequest) {
  leader_->answer = [](const api::ClientRequest& request, ClientReplyFn reply) {
    EXPECT_TRUE(request.allow_forward());
    reply(Response(api::ClientResponse::STATUS_NOT_LEADER, 0));
  };
  KvLoadOptions options = Options();
  options.ops = 5;
  options.forward = true;
  ASSERT_OK_AND_ASSIGN(KvLoadResult result, RunKvLoad(options));
  EXPECT_EQ(result.failed, 5u);
  EXPECT_EQ(result.errors.begin()->first, "STATUS_NOT_LEADER");
}

TEST_F(KvLoadTest, BadOptionsAreRefused) {
  KvLoadOptions options = Options();
  EXPECT_THAT(RunKvLoad(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("either ops or a duration")));
  options.ops = 1;
  options.key_bytes = 15;
  EXPECT_THAT(RunKvLoad(options), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key size")));
  options.key_bytes = 16;
  options.op = KvLoadOptions::Op::kGet;
  EXPECT_THAT(RunKvLoad(options), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key space")));
  options.key_space = 1;
  options.keys = KvLoadOptions::Keys::kRandom;
  EXPECT_THAT(RunKvLoad(options), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("puts only")));
  options = Options();
  options.ops = 1;
  options.clients = KvLoadOptions::kClientsMax + 1;
  EXPECT_THAT(RunKvLoad(options), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clients")));
}

}  // namespace
}  // namespace blixard::net
