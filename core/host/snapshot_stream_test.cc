// Snapshot streams: the sender and receiver on their own, then a Host
// leader streaming a snapshot to a lagging follower in chunks (issue 14,
// point 4).
#include "core/host/snapshot_stream.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/host/host.h"
#include "core/host/testing/host_harness.h"
#include "core/host/testing/scripted_env.h"
#include "core/proto/host.pb.h"
#include "core/proto/raft.pb.h"
#include "core/raft/progress.h"
#include "gtest/gtest.h"

namespace blixard::host {
namespace {

const NodeId kLeader(1), kFollower(2);

raft::Message SnapshotMessage(uint64_t index, std::string data) {
  raft::Message message;
  message.set_type(raft::MSG_SNAPSHOT);
  message.set_from(kLeader.value());
  message.set_to(kFollower.value());
  message.set_term(3);
  message.mutable_snapshot()->mutable_metadata()->set_index(index);
  message.mutable_snapshot()->mutable_metadata()->set_term(2);
  message.mutable_snapshot()->set_data(std::move(data));
  return message;
}

SnapshotStreamOptions SmallChunks() {
  SnapshotStreamOptions options;
  options.chunk_bytes = 10;
  options.window_chunks = 2;
  options.retransmit_us = 100;
  options.chunk_timeout_us = 1000;
  return options;
}

// Hands every message in `from` to the other side; returns what it said.
std::vector<StreamOut> ToReceiver(SnapshotReceiver& receiver, std::vector<StreamOut> from,
                                  MonoMicros now, std::optional<raft::Message>* complete) {
  std::vector<StreamOut> acks;
  for (StreamOut& item : from) {
    EXPECT_EQ(item.to, kFollower);
    std::optional<raft::Message> done =
        receiver.OnChunk(kFollower, kLeader, item.message.snapshot_chunk(), now, &acks);
    if (done.has_value()) *complete = std::move(done);
    receiver.CheckInvariants();
  }
  return acks;
}

TEST(SnapshotStreamTest, ASnapshotCrossesInChunksAndSucceedsOnlyWhenDurable) {
  SnapshotSender sender(SmallChunks(), 7);
  SnapshotReceiver receiver;
  const std::string data = "0123456789abcdefghijklmnopqrstuvwxyz!";  // 37 bytes: 4 chunks
  std::vector<StreamOut> out;
  ASSERT_TRUE(sender.Start(SnapshotMessage(40, data), 0, &out));
  ASSERT_EQ(out.size(), 2u) << "the window is two chunks";
  EXPECT_TRUE(out[0].message.snapshot_chunk().header().snapshot().data().empty());
  std::optional<raft::Message> complete;
  std::vector<SnapshotSender::Verdict> verdicts;
  for (int round = 0; round < 10 && !complete.has_value(); ++round) {
    std::vector<StreamOut> acks = ToReceiver(receiver, std::move(out), round, &complete);
    out.clear();
    for (StreamOut& ack : acks) {
      verdicts.push_back(sender.OnAck(kFollower, ack.message.snapshot_ack(), round, &out));
      sender.CheckInvariants();
    }
  }
  ASSERT_TRUE(complete.has_value());
  EXPECT_EQ(complete->snapshot().data(), data);
  EXPECT_EQ(complete->snapshot().metadata().index(), 40u);
  for (SnapshotSender::Verdict verdict : verdicts) {
    EXPECT_EQ(verdict, SnapshotSender::Verdict::kPending) << "a verdict before durability";
  }
  // Stepped and queued, then durable: only now the final ack, and success.
  std::vector<StreamOut> final;
  receiver.OnStepped(kLeader, /*queued=*/true, &final);
  EXPECT_TRUE(final.empty());
  receiver.OnDurable(Index(39), &final);
  EXPECT_TRUE(final.empty()) << "an older snapshot's durability is not this one's";
  receiver.OnDurable(Index(40), &final);
  ASSERT_EQ(final.size(), 1u);
  EXPECT_TRUE(final[0].message.snapshot_ack().done());
  EXPECT_EQ(sender.OnAck(kFollower, final[0].message.snapshot_ack(), 20, &out),
            SnapshotSender::Verdict::kSucceeded);
  EXPECT_EQ(sender.streams(), 0u);
}

TEST(SnapshotStreamTest, LostChunksAreSentAgainAndAStalledStreamFails) {
  SnapshotSender sender(SmallChunks(), 1);
  SnapshotReceiver receiver;
  std::vector<StreamOut> out;
  ASSERT_TRUE(sender.Start(SnapshotMessage(9, std::string(25, 'x')), 0, &out));
  ASSERT_EQ(out.size(), 2u);
  // The first chunk is lost: the receiver holds nothing and says so.
  std::optional<raft::Message> complete;
  std::vector<StreamOut> acks = ToReceiver(receiver, {out[1]}, 0, &complete);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].message.snapshot_ack().received_bytes(), 0u);
  out.clear();
  EXPECT_EQ(sender.OnAck(kFollower, acks[0].message.snapshot_ack(), 0, &out),
            SnapshotSender::Verdict::kPending);
  // After the resend interval, the window again from what is held.
  EXPECT_TRUE(sender.Tick(99, &out).empty());
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(sender.Tick(100, &out).empty());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].message.snapshot_chunk().offset(), 0u);
  // No progress for the chunk timeout: the stream fails (the Host reports
  // it to Raft), whatever was sent meanwhile.
  out.clear();
  EXPECT_TRUE(sender.Tick(999, &out).empty());
  EXPECT_EQ(sender.Tick(1000, &out), std::vector<NodeId>{kFollower});
  EXPECT_EQ(sender.streams(), 0u);
}

TEST(SnapshotStreamTest, ReorderedChunksAreKeptAndALostOneIsResentAtOnce) {
  SnapshotStreamOptions options = SmallChunks();
  options.window_chunks = 4;
  SnapshotSender sender(options, 1);
  SnapshotReceiver receiver;
  const std::string data(40, 'r');
  std::vector<StreamOut> out;
  ASSERT_TRUE(sender.Start(SnapshotMessage(9, data), 0, &out));
  ASSERT_EQ(out.size(), 4u);
  // Chunk 0 is lost; 3, 2 and 1 arrive in that order and are kept.
  std::optional<raft::Message> complete;
  std::vector<StreamOut> acks = ToReceiver(receiver, {out[3], out[2], out[1]}, 0, &complete);
  ASSERT_EQ(acks.size(), 3u);
  std::vector<StreamOut> resent;
  for (const StreamOut& ack : acks) {
    EXPECT_EQ(ack.message.snapshot_ack().received_bytes(), 0u);
    sender.OnAck(kFollower, ack.message.snapshot_ack(), 1, &resent);
  }
  // Two acks without progress: the missing chunk goes again, before any
  // resend timer.
  ASSERT_GE(resent.size(), 1u);
  EXPECT_EQ(resent[0].message.snapshot_chunk().offset(), 0u);
  acks = ToReceiver(receiver, {resent[0]}, 2, &complete);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].message.snapshot_ack().received_bytes(), 40u) << "the kept chunks count";
  ASSERT_TRUE(complete.has_value());
  EXPECT_EQ(complete->snapshot().data(), data);
}

TEST(SnapshotStreamTest, AnUnusedSnapshotEndsTheStreamAsFailed) {
  SnapshotSender sender(SmallChunks(), 1);
  SnapshotReceiver receiver;
  std::vector<StreamOut> out;
  ASSERT_TRUE(sender.Start(SnapshotMessage(9, "abc"), 0, &out));
  std::optional<raft::Message> complete;
  std::vector<StreamOut> acks = ToReceiver(receiver, std::move(out), 0, &complete);
  ASSERT_TRUE(complete.has_value());
  receiver.OnStepped(kLeader, /*queued=*/false, &acks);
  ASSERT_EQ(acks.size(), 2u);
  out.clear();
  EXPECT_EQ(sender.OnAck(kFollower, acks[0].message.snapshot_ack(), 1, &out),
            SnapshotSender::Verdict::kPending);
  EXPECT_EQ(sender.OnAck(kFollower, acks[1].message.snapshot_ack(), 1, &out),
            SnapshotSender::Verdict::kFailed);
}

TEST(SnapshotStreamTest, BadChunksAreRefusedAndChangeNothing) {
  SnapshotReceiver receiver;
  SnapshotChunk good;
  good.set_stream_id(5);
  good.set_offset(0);
  good.set_total_bytes(20);
  good.set_data("0123456789");
  *good.mutable_header() = SnapshotMessage(9, "");
  struct Case {
    const char* why;
    std::function<void(SnapshotChunk&)> spoil;
  };
  const std::vector<Case> cases = {
      {"stream id 0", [](SnapshotChunk& c) { c.set_stream_id(0); }},
      {"not a MSG_SNAPSHOT", [](SnapshotChunk& c) { c.mutable_header()->set_type(raft::MSG_APPEND); }},
      {"header says from", [](SnapshotChunk& c) { c.mutable_header()->set_from(9); }},
      {"header says from", [](SnapshotChunk& c) { c.mutable_header()->set_to(9); }},
      {"carries snapshot data",
       [](SnapshotChunk& c) { c.mutable_header()->mutable_snapshot()->set_data("x"); }},
      {"kSnapshotBytesMax", [](SnapshotChunk& c) { c.set_total_bytes(kSnapshotBytesMax + 1); }},
      {"kSnapshotChunkBytesMax",
       [](SnapshotChunk& c) {
         c.set_total_bytes(kSnapshotChunkBytesMax + 2);
         c.set_data(std::string(kSnapshotChunkBytesMax + 1, 'x'));
       }},
      {"beyond the snapshot", [](SnapshotChunk& c) { c.set_offset(15); }},
      {"beyond the snapshot", [](SnapshotChunk& c) { c.set_offset(UINT64_MAX); }},
  };
  for (const Case& c : cases) {
    SnapshotChunk chunk = good;
    c.spoil(chunk);
    std::vector<StreamOut> out;
    EXPECT_FALSE(receiver.OnChunk(kFollower, kLeader, chunk, 0, &out).has_value()) << c.why;
    ASSERT_EQ(out.size(), 1u) << c.why;
    const SnapshotAck& ack = out[0].message.snapshot_ack();
    EXPECT_TRUE(ack.done() && !ack.installed()) << c.why;
    EXPECT_NE(ack.error().find(c.why), std::string::npos) << ack.error();
    EXPECT_EQ(receiver.streams(), 0u) << c.why << ": a refused chunk started a stream";
  }
  // A good chunk still works; one out of order is answered with what is held.
  std::vector<StreamOut> out;
  EXPECT_FALSE(receiver.OnChunk(kFollower, kLeader, good, 0, &out).has_value());
  SnapshotChunk late = good;
  late.set_offset(10);
  late.set_data("abc");
  SnapshotChunk skip = good;
  skip.set_offset(15);
  skip.set_data("abcde");
  EXPECT_FALSE(receiver.OnChunk(kFollower, kLeader, skip, 0, &out).has_value());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].message.snapshot_ack().received_bytes(), 10u);
  receiver.CheckInvariants();
}

// ---------------------------------------------------------------------------
// A Host leader and a lagging follower.

using testing::Involving;
using testing::kTestTickUs;
using testing::PutRequest;
using testing::RaftMessage;
using testing::ReplySlot;
using testing::ScriptedLogStore;
using testing::ScriptedNetwork;
using testing::TestCluster;

const NodeId kN1(1), kN2(2), kN3(3);

// Packets carrying snapshot chunks from `from` to `to`.
testing::PacketPredicate Chunks(NodeId from, NodeId to) {
  return [from, to](const Packet& packet) {
    if (packet.kind != Packet::Kind::kBytes || packet.from != from || packet.to != to) {
      return false;
    }
    HostMessage message;
    return message.ParseFromString(packet.bytes) && message.has_snapshot_chunk();
  };
}

raft::ProgressState FollowerState(TestCluster& cluster, NodeId leader, NodeId follower) {
  return cluster.host(leader).raw_node().raft().tracker().Find(follower)->state();
}

// Starts the cluster with n3 cut off, elects n1 or n2, and commits 15 puts
// (k0..k14) that n3 misses; with a short snapshot interval the leader's log
// is compacted past them. Returns the leader (none: no election, or a put
// went unanswered).
NodeId LeadWhileN3IsCutOff(TestCluster& cluster) {
  cluster.StartAll();
  const auto isolated = Involving(kN3);
  NodeId leader = kNoNode;
  for (int tick = 0; tick < 300 && leader.is_none(); ++tick) {
    cluster.AdvanceBy(kTestTickUs, nullptr, isolated);
    for (NodeId id : {kN1, kN2}) {
      if (cluster.host(id).is_leader()) leader = id;
    }
  }
  if (leader.is_none()) return kNoNode;
  for (int i = 0; i < 15; ++i) {
    ReplySlot slot;
    cluster.host(leader).Submit(PutRequest(absl::StrCat("k", i), "v", 7, i + 1), slot.Callback());
    cluster.Settle(nullptr, isolated);
    if (slot.count != 1) return kNoNode;
  }
  return leader;
}

TEST(HostSnapshotTest, ALaggingFollowerGetsTheSnapshotInChunksAndTheLeaderWaitsForDurability) {
  TestCluster cluster({kN1, kN2, kN3}, [](HostOptions& options) {
    options.snapshot_interval_entries = 5;
    options.log_retain_entries = 2;
    options.snapshot_chunk_bytes = 64;  // many chunks for a small state
    options.snapshot_window_chunks = 2;
  });
  const NodeId leader = LeadWhileN3IsCutOff(cluster);
  ASSERT_FALSE(leader.is_none());
  Host& lagging = cluster.host(kN3);
  EXPECT_EQ(lagging.state_machine().FindKv("k0"), nullptr);

  // Heal. The snapshot goes out only as chunks, never as one message.
  ScriptedNetwork& network = cluster.network();
  const testing::PacketPredicate chunks = Chunks(leader, kN3);
  ScriptedLogStore& store = cluster.node(kN3).store();
  // The follower's durable writes wait: every chunk arrives, the snapshot
  // is handed to the store, and the leader hears of it only once durable.
  cluster.node(kN3).set_hold_writes(true);
  std::set<uint64_t> offsets;
  for (int tick = 0; tick < 200 && !(store.pending() > 0 && store.PendingWrite(store.pending() - 1)
                                                                 .snapshot.has_value());
       ++tick) {
    cluster.AdvanceBy(kTestTickUs);
  }
  for (const testing::SentPacket& sent : network.history()) {
    if (!chunks(sent.packet)) continue;
    HostMessage message;
    ASSERT_TRUE(message.ParseFromString(sent.packet.bytes));
    offsets.insert(message.snapshot_chunk().offset());
  }
  EXPECT_EQ(network.CountHistory(RaftMessage(raft::MSG_SNAPSHOT)), 0u);
  EXPECT_GE(offsets.size(), 3u) << "the snapshot should take several chunks";
  // Chunks, and nothing else, take the bulk lane (the acks, heartbeats and
  // appends beside them the control lane).
  size_t acks = 0;
  for (const testing::SentPacket& sent : network.history()) {
    EXPECT_EQ(sent.bulk, chunks(sent.packet)) << "packet " << sent.sequence;
    HostMessage message;
    if (sent.packet.kind == Packet::Kind::kBytes && message.ParseFromString(sent.packet.bytes) &&
        message.has_snapshot_ack()) {
      ++acks;
    }
  }
  EXPECT_GE(acks, 1u);
  ASSERT_GE(store.pending(), 1u);
  const LogWrite& pending = store.PendingWrite(store.pending() - 1);
  ASSERT_TRUE(pending.snapshot.has_value());
  const uint64_t snapshot_index = pending.snapshot->metadata().index();
  cluster.AdvanceBy(5 * kTestTickUs);
  EXPECT_EQ(FollowerState(cluster, leader, kN3), raft::ProgressState::kSnapshot)
      << "the leader moved on before the follower's snapshot was durable";
  EXPECT_LT(lagging.applied_index(), Index(snapshot_index));

  cluster.node(kN3).set_hold_writes(false);
  cluster.AdvanceBy(10 * kTestTickUs);
  EXPECT_GE(lagging.applied_index(), Index(snapshot_index));
  EXPECT_NE(FollowerState(cluster, leader, kN3), raft::ProgressState::kSnapshot);
  cluster.Settle();
  EXPECT_EQ(lagging.state_machine().Digest(), cluster.host(leader).state_machine().Digest());
}

TEST(HostSnapshotTest, ACorruptedSnapshotIsRefusedNotInstalledAndTheNodeRunsOn) {
  TestCluster cluster({kN1, kN2, kN3}, [](HostOptions& options) {
    options.snapshot_interval_entries = 5;
    options.log_retain_entries = 2;
    options.snapshot_chunk_bytes = 256;
  });
  const NodeId leader = LeadWhileN3IsCutOff(cluster);
  ASSERT_FALSE(leader.is_none());
  // Every chunk to n3 arrives with its bytes flipped (the sizes and the
  // framing intact): the reassembled state does not decode.
  ScriptedNetwork& network = cluster.network();
  const testing::PacketPredicate chunks = Chunks(leader, kN3);
  size_t corrupted = 0;
  for (int tick = 0; tick < 60; ++tick) {
    for (const testing::SentPacket* sent : network.InFlightWhere(chunks)) {
      HostMessage message;
      ASSERT_TRUE(message.ParseFromString(sent->packet.bytes));
      std::string* bytes = message.mutable_snapshot_chunk()->mutable_data();
      for (char& c : *bytes) c = static_cast<char>(c ^ 0x5a);
      Packet copy = sent->packet;
      copy.bytes = message.SerializeAsString();
      const uint64_t sequence = sent->sequence;
      ASSERT_TRUE(network.Drop(sequence));
      ASSERT_TRUE(network.Inject(std::move(copy)));
      ++corrupted;
    }
    cluster.AdvanceBy(kTestTickUs, chunks);
  }
  ASSERT_GT(corrupted, 0u);
  EXPECT_TRUE(cluster.node(kN3).observer().snapshots_applied.empty());
  EXPECT_TRUE(cluster.node(kN3).running());
  EXPECT_EQ(cluster.host(kN3).state_machine().FindKv("k0"), nullptr);
  cluster.host(kN3).CheckInvariants();
  // The network heals: the next stream gets through.
  cluster.AdvanceBy(20 * 1000 * 1000);
  EXPECT_NE(cluster.host(kN3).state_machine().FindKv("k0"), nullptr);
}

TEST(HostSnapshotTest, AWholeSnapshotMessageFromTheNetworkIsRefused) {
  TestCluster cluster({kN1, kN2});
  cluster.StartAll();
  const NodeId leader = cluster.ElectLeader();
  const NodeId follower = leader == kN1 ? kN2 : kN1;
  const Index applied = cluster.host(follower).applied_index();
  raft::Message message;
  message.set_type(raft::MSG_SNAPSHOT);
  message.set_from(leader.value());
  message.set_to(follower.value());
  message.set_term(cluster.host(leader).term().value());
  message.mutable_snapshot()->mutable_metadata()->set_index(applied.value() + 100);
  message.mutable_snapshot()->mutable_metadata()->set_term(cluster.host(leader).term().value());
  // A well-formed snapshot a core would take: both voters, a valid state.
  message.mutable_snapshot()->mutable_metadata()->mutable_conf_state()->add_voters(1);
  message.mutable_snapshot()->mutable_metadata()->mutable_conf_state()->add_voters(2);
  message.mutable_snapshot()->set_data(cluster.host(leader).state_machine().Snapshot());
  Packet packet;
  packet.from = leader;
  packet.to = follower;
  packet.raft = message;
  ASSERT_TRUE(cluster.network().Inject(std::move(packet)));
  cluster.Settle();
  EXPECT_LT(cluster.host(follower).applied_index(), Index(applied.value() + 100));
  cluster.host(follower).CheckInvariants();
}

}  // namespace
}  // namespace blixard::host
