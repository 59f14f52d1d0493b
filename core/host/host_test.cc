// Unit tests of the Host on a scripted Env (core/host/testing): the test
// decides when time moves, when each packet arrives and when each durable
// write completes, so every ordering rule of host.h can be pinned at the
// exact step where it matters.
#include "core/host/host.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/host/testing/host_harness.h"
#include "core/host/testing/scripted_env.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"
#include "core/proto/host.pb.h"
#include "core/proto/raft.pb.h"
#include "core/sm/cluster_state_machine.h"
#include "gtest/gtest.h"

namespace blixard::host {
namespace {

using testing::GetRequest;
using testing::HoldVoteRequests;
using testing::HostPacket;
using testing::HostBytes;
using testing::Involving;
using testing::kTestTickUs;
using testing::PutRequest;
using testing::RaftMessage;
using testing::ReplySlot;
using testing::ScriptedLogStore;
using testing::ScriptedNetwork;
using testing::SubmitAndSettle;
using testing::TestCluster;

const NodeId kN1(1);
const NodeId kN2(2);
const NodeId kN3(3);

std::vector<NodeId> Followers(TestCluster& cluster, NodeId leader) {
  std::vector<NodeId> out;
  for (NodeId id : cluster.ids()) {
    if (id != leader) out.push_back(id);
  }
  return out;
}

// Every write a store received that carries only a hard state changes term
// or vote: a commit-only hard state is never written on its own.
void ExpectNoCommitOnlyWrites(const ScriptedLogStore& store, NodeId node) {
  uint64_t term = 0;
  uint64_t vote = 0;
  for (const ScriptedLogStore::RecordedWrite& record : store.writes()) {
    const LogWrite& write = record.write;
    if (!write.hard_state.has_value()) continue;
    if (!write.snapshot && write.entries.empty() && !write.compact_to) {
      EXPECT_TRUE(write.hard_state->term() != term || write.hard_state->vote() != vote)
          << node << " wrote a commit-only hard state on its own (write " << record.sequence << ": "
          << write.hard_state->ShortDebugString() << ")";
    }
    term = write.hard_state->term();
    vote = write.hard_state->vote();
  }
}

// ---------------------------------------------------------------------------
// 1. Persist before send / ack.

TEST(HostPersistTest, LeaderAppendsGoOutBeforeItsWriteAndFollowerAcksOnlyOnceDurable) {
  TestCluster cluster({kN1, kN2, kN3});
  cluster.StartAll();
  const NodeId leader = cluster.ElectLeader();
  cluster.Settle();
  const NodeId follower = Followers(cluster, leader)[0];
  ScriptedNetwork& network = cluster.network();

  ReplySlot slot;
  cluster.host(leader).Submit(PutRequest("k", "v", 7, 1), slot.Callback());
  // The leader's own write is pending, yet its appends are on the wire.
  ASSERT_EQ(cluster.node(leader).store().pending(), 1u);
  ASSERT_EQ(cluster.node(leader).store().PendingWrite(0).entries.size(), 1u);
  const uint64_t index = cluster.node(leader).store().PendingWrite(0).entries[0].index();
  EXPECT_EQ(network.CountInFlight(RaftMessage(raft::MSG_APPEND, leader, follower)), 1u);

  const auto acks = RaftMessage(raft::MSG_APPEND_RESPONSE, follower, leader);
  const size_t acks_before = network.CountHistory(acks);
  ASSERT_EQ(network.DeliverWhere(RaftMessage(raft::MSG_APPEND, leader, follower)), 1u);
  ScriptedLogStore& store = cluster.node(follower).store();
  ASSERT_EQ(store.pending(), 1u);
  ASSERT_EQ(store.PendingWrite(0).entries.size(), 1u);
  EXPECT_EQ(store.PendingWrite(0).entries[0].index(), index);
  // Not durable: no ack anywhere, not even queued.
  EXPECT_EQ(network.CountHistory(acks), acks_before);

  store.CompleteNext();
  const std::vector<const testing::SentPacket*> sent = network.InFlightWhere(acks);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(sent[0]->packet.raft.reject());
  EXPECT_EQ(sent[0]->packet.raft.index(), index);
  EXPECT_EQ(slot.count, 0);
}

TEST(HostPersistTest, VoteIsGrantedOnlyOnceTheVoteIsDurable) {
  TestCluster cluster({kN1, kN2, kN3});
  cluster.StartAll();
  ScriptedNetwork& network = cluster.network();
  const auto votes = RaftMessage(raft::MSG_VOTE);
  std::vector<const testing::SentPacket*> requests = HoldVoteRequests(cluster);
  ASSERT_FALSE(requests.empty()) << "no candidate within 100 ticks";
  const NodeId candidate = requests[0]->packet.from;
  const NodeId voter = requests[0]->packet.to;
  const uint64_t term = requests[0]->packet.raft.term();
  const auto grants = RaftMessage(raft::MSG_VOTE_RESPONSE, voter, candidate);
  ASSERT_EQ(network.CountHistory(grants), 0u);

  ASSERT_TRUE(network.Deliver(requests[0]->sequence));
  ScriptedLogStore& store = cluster.node(voter).store();
  ASSERT_EQ(store.pending(), 1u);
  ASSERT_TRUE(store.PendingWrite(0).hard_state.has_value());
  EXPECT_EQ(store.PendingWrite(0).hard_state->term(), term);
  EXPECT_EQ(store.PendingWrite(0).hard_state->vote(), candidate.value());
  EXPECT_EQ(network.CountHistory(grants), 0u) << "vote granted before it was durable";

  store.CompleteNext();
  const std::vector<const testing::SentPacket*> sent = network.InFlightWhere(grants);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(sent[0]->packet.raft.reject());
  EXPECT_EQ(sent[0]->packet.raft.term(), term);
}

// ---------------------------------------------------------------------------
// 2. Apply before reply.

TEST(HostReplyTest, WriteIsAnsweredOnceCommittedByAQuorumAndAppliedWithItsResult) {
  TestCluster cluster({kN1, kN2, kN3});
  cluster.StartAll();
  const NodeId leader = cluster.ElectLeader();
  cluster.Settle();
  ScriptedNetwork& network = cluster.network();
  Host& host = cluster.host(leader);

  int replies = 0;
  api::ClientResponse response;
  bool applied_when_answered = false;
  host.Submit(PutRequest("k", "v", 7, 1), [&](const api::ClientResponse& got) {
    ++replies;
    response = got;
    const cluster::KvEntry* entry = host.state_machine().FindKv("k");
    applied_when_answered =
        host.applied_index() >= Index(got.index()) && entry != nullptr && entry->value() == "v";
  });
  const uint64_t index = cluster.node(leader).store().PendingWrite(0).entries[0].index();
  // Durable on the leader alone: one of three, no commit, no answer.
  cluster.node(leader).store().CompleteAll();
  EXPECT_EQ(replies, 0);
  EXPECT_LT(host.commit_index(), Index(index));
  // Replicated to one follower, but its ack is held: still no answer.
  const NodeId follower = Followers(cluster, leader)[0];
  const NodeId other = Followers(cluster, leader)[1];
  network.DropWhere(testing::AnyPacket(leader, other));
  network.DeliverWhere(RaftMessage(raft::MSG_APPEND, leader, follower));
  cluster.node(follower).store().CompleteAll();
  EXPECT_EQ(replies, 0);
  // The ack makes a quorum: committed, applied, answered.
  network.DeliverWhere(RaftMessage(raft::MSG_APPEND_RESPONSE, follower, leader));
  ASSERT_EQ(replies, 1);
  EXPECT_TRUE(applied_when_answered);
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK);
  EXPECT_EQ(response.index(), index);
  EXPECT_EQ(response.term(), host.term().value());
  EXPECT_EQ(response.result().code(), cluster::RESULT_OK);
  EXPECT_EQ(response.result().kv().key(), "k");
  EXPECT_EQ(response.result().kv().mod_index(), index);
  EXPECT_EQ(cluster.node(leader).observer().acknowledged, std::vector<Index>{Index(index)});
}

TEST(HostReplyTest, QuorumWithoutTheLeadersOwnDurableWriteIsNotApplied) {
  TestCluster cluster({kN1, kN2, kN3});
  cluster.StartAll();
  const NodeId leader = cluster.ElectLeader();
  cluster.Settle();
  ScriptedNetwork& network = cluster.network();
  Host& host = cluster.host(leader);

  ReplySlot slot;
  host.Submit(PutRequest("k", "v", 7, 1), slot.Callback());
  const uint64_t index = cluster.node(leader).store().PendingWrite(0).entries[0].index();
  // Both followers persist and ack while the leader's own write is pending.
  for (NodeId follower : Followers(cluster, leader)) {
    network.DeliverWhere(RaftMessage(raft::MSG_APPEND, leader, follower));
    cluster.node(follower).store().CompleteAll();
    network.DeliverWhere(RaftMessage(raft::MSG_APPEND_RESPONSE, follower, leader));
  }
  EXPECT_EQ(slot.count, 0) << "answered before the entry was durable on the leader";
  EXPECT_LT(host.applied_index(), Index(index));
  EXPECT_EQ(host.state_machine().FindKv("k"), nullptr);

  cluster.node(leader).store().CompleteAll();
  ASSERT_EQ(slot.count, 1);
  EXPECT_EQ(slot.response.status(), api::ClientResponse::STATUS_OK);
  EXPECT_EQ(slot.response.index(), index);
  EXPECT_NE(host.state_machine().FindKv("k"), nullptr);
}

// ---------------------------------------------------------------------------
// 3. Commit-only hard states ride along with the next write.

TEST(HostPersistTest, CommitOnlyHardStateIsNotWrittenAloneButRidesWithTheNextWrite) {
  TestCluster cluster({kN1});
  cluster.StartAll();
  cluster.ElectLeader();
  cluster.Settle();
  Host& host = cluster.host(kN1);
  ScriptedLogStore& store = cluster.node(kN1).store();

  ReplySlot first;
  host.Submit(PutRequest("a", "1", 7, 1), first.Callback());
  ASSERT_EQ(store.pending(), 1u);
  const uint64_t index = store.PendingWrite(0).entries.at(0).index();
  const size_t writes = store.writes().size();
  store.CompleteNext();
  // Committed and applied (the reply proves it) without another write.
  ASSERT_EQ(first.count, 1);
  EXPECT_EQ(host.commit_index(), Index(index));
  EXPECT_EQ(store.writes().size(), writes) << "a commit-only hard state was written";
  EXPECT_EQ(store.pending(), 0u);
  EXPECT_LT(store.durable().hard_state().commit(), index);

  ReplySlot second;
  host.Submit(PutRequest("b", "2", 7, 2), second.Callback());
  ASSERT_EQ(store.pending(), 1u);
  const LogWrite& next = store.PendingWrite(0);
  ASSERT_EQ(next.entries.size(), 1u);
  ASSERT_TRUE(next.hard_state.has_value()) << "the commit did not ride along";
  EXPECT_EQ(next.hard_state->commit(), index);
  store.CompleteAll();
  EXPECT_EQ(second.count, 1);
  ExpectNoCommitOnlyWrites(store, kN1);
}

TEST(HostPersistTest, NoNodeOfAClusterWritesCommitOnlyHardStates) {
  TestCluster cluster({kN1, kN2, kN3});
  cluster.StartAll();
  const NodeId leader = cluster.ElectLeader();
  for (int i = 0; i < 5; ++i) {
    const api::ClientResponse response =
        SubmitAndSettle(cluster, leader, PutRequest(absl::StrCat("k", i), "v", 7, i + 1));
    EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK);
    cluster.AdvanceBy(kTestTickUs);  // heartbeats carry the commit to followers
  }
  for (NodeId id : cluster.ids()) {
    EXPECT_GE(cluster.host(id).applied_index(), cluster.host(leader).applied_index())
        << id << " did not learn the commit";
    ExpectNoCommitOnlyWrites(cluster.node(id).store(), id);
  }
}

// ---------------------------------------------------------------------------
// 4. Forwarding.

TEST(HostForwardTest, FollowerForwardsToTheLeaderAndRelaysTheReply) {
  TestCluster cluster({kN1, kN2, kN3});
  cluster.StartAll();
  const NodeId leader = cluster.ElectLeader();
  cluster.Settle();
  const NodeId follower = Followers(cluster, leader)[0];

  ReplySlot slot;
  api::ClientRequest request = PutRequest("k", "v", 9, 1);
  request.set_allow_forward(true);
  cluster.host(follower).Submit(std::move(request), slot.Callback());
  EXPECT_EQ(slot.count, 0);
  EXPECT_EQ(cluster.network().CountInFlight(HostBytes(follower, leader)), 1u);
  cluster.Settle();
  ASSERT_EQ(slot.count, 1);
  EXPECT_EQ(slot.response.status(), api::ClientResponse::STATUS_OK);
  EXPECT_GT(slot.response.index(), 0u);
  EXPECT_EQ(slot.response.result().kv().key(), "k");
  EXPECT_NE(cluster.host(leader).state_machine().FindKv("k"), nullptr);
  EXPECT_EQ(cluster.network().CountHistory(HostBytes(leader, follower)), 1u);

  // Without allow_forward the follower answers NOT_LEADER with a hint.
  ReplySlot direct;
  cluster.host(follower).Submit(PutRequest("k2", "v", 9, 2), direct.Callback());
  ASSERT_EQ(direct.count, 1);
  EXPECT_EQ(direct.response.status(), api::ClientResponse::STATUS_NOT_LEADER);
  EXPECT_EQ(direct.response.leader_hint(), leader.value());
}

TEST(HostForwardTest, ForwardThatTimesOutIsAnsweredUnknownForCommandsNotLeaderForQueries) {
  TestCluster cluster({kN1, kN2, kN3},
                      [](HostOptions& options) { options.forward_timeout_us = 1'000'000; });
  cluster.StartAll();
  const NodeId leader = cluster.ElectLeader();
  cluster.Settle();
  const NodeId follower = Followers(cluster, leader)[0];
  const auto lost = HostBytes(follower, leader);

  ReplySlot command;
  ReplySlot query;
  api::ClientRequest write = PutRequest("k", "v", 9, 1);
  write.set_allow_forward(true);
  api::ClientRequest read = GetRequest("k");
  read.set_allow_forward(true);
  const MonoMicros sent_at = cluster.now();
  cluster.host(follower).Submit(std::move(write), command.Callback());
  cluster.host(follower).Submit(std::move(read), query.Callback());
  EXPECT_EQ(cluster.network().DropWhere(lost), 2u);

  cluster.AdvanceTo(sent_at + 1'000'000 - kTestTickUs, nullptr, lost);
  EXPECT_EQ(command.count, 0) << "answered before the forward timeout";
  EXPECT_EQ(query.count, 0);
  cluster.AdvanceTo(sent_at + 1'000'000 + 2 * kTestTickUs, nullptr, lost);
  ASSERT_EQ(command.count, 1);
  ASSERT_EQ(query.count, 1);
  EXPECT_EQ(command.response.status(), api::ClientResponse::STATUS_UNKNOWN);
  EXPECT_EQ(query.response.status(), api::ClientResponse::STATUS_NOT_LEADER);
  EXPECT_EQ(cluster.host(leader).state_machine().FindKv("k"), nullptr);
}

TEST(HostForwardTest, AForwardedRequestIsNeverForwardedAgain) {
  TestCluster cluster({kN1, kN2, kN3});
  cluster.StartAll();
  const NodeId leader = cluster.ElectLeader();
  cluster.Settle();
  const NodeId sender = Followers(cluster, leader)[0];
  const NodeId receiver = Followers(cluster, leader)[1];

  // `sender` believed `receiver` led and forwarded a request that allows
  // forwarding; the receiver, a follower, must answer instead of passing
  // it on (one hop only).
  HostMessage message;
  message.mutable_forward()->set_forward_id(42);
  *message.mutable_forward()->mutable_request() = PutRequest("k", "v", 9, 1);
  message.mutable_forward()->mutable_request()->set_allow_forward(true);
  ASSERT_TRUE(cluster.network().Inject(HostPacket(sender, receiver, message)));
  EXPECT_EQ(cluster.network().CountInFlight(HostBytes(receiver, leader)), 0u)
      << "forwarded a second hop";
  std::vector<const testing::SentPacket*> replies =
      cluster.network().InFlightWhere(HostBytes(receiver, sender));
  ASSERT_EQ(replies.size(), 1u);
  HostMessage reply;
  ASSERT_TRUE(reply.ParseFromString(replies[0]->packet.bytes));
  ASSERT_TRUE(reply.has_forward_reply());
  EXPECT_EQ(reply.forward_reply().forward_id(), 42u);
  EXPECT_EQ(reply.forward_reply().response().status(), api::ClientResponse::STATUS_NOT_LEADER);
  EXPECT_EQ(reply.forward_reply().response().leader_hint(), leader.value());
}

// ---------------------------------------------------------------------------
// 5. Snapshots.

TEST(HostSnapshotTest, HostWritesASnapshotEverySnapshotIntervalEntries) {
  TestCluster cluster({kN1}, [](HostOptions& options) {
    options.snapshot_interval_entries = 5;
    options.log_retain_entries = 2;
  });
  cluster.StartAll();
  cluster.ElectLeader();
  cluster.Settle();
  for (int i = 0; i < 12; ++i) {
    SubmitAndSettle(cluster, kN1, PutRequest(absl::StrCat("k", i), "v", 7, i + 1));
  }
  const ScriptedLogStore& store = cluster.node(kN1).store();
  std::vector<uint64_t> snapshots;
  for (const ScriptedLogStore::RecordedWrite& record : store.writes()) {
    if (record.write.snapshot.has_value()) {
      snapshots.push_back(record.write.snapshot->metadata().index());
      EXPECT_TRUE(record.completed);
    }
  }
  ASSERT_GE(snapshots.size(), 2u);
  uint64_t previous = 0;
  for (uint64_t index : snapshots) {
    EXPECT_EQ(index - previous, 5u) << "snapshot at " << index << " after " << previous;
    previous = index;
  }
  // The durable snapshot holds the state at its index, and the store's log
  // starts after it.
  ASSERT_TRUE(store.durable().snapshot().has_value());
  const raft::Snapshot& snapshot = *store.durable().snapshot();
  EXPECT_EQ(snapshot.metadata().index(), snapshots.back());
  EXPECT_EQ(store.durable().FirstIndex(), Index(snapshots.back() + 1));
  ClusterStateMachine restored;
  ASSERT_OK(restored.Restore(snapshot.data()));
  EXPECT_EQ(restored.applied_index(), Index(snapshot.metadata().index()));
  EXPECT_NE(restored.FindKv("k0"), nullptr);
}

}  // namespace
}  // namespace blixard::host
