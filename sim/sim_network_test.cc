#include "sim/sim_network.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

// A small cluster with a recording receiver on every node.
class Net {
 public:
  explicit Net(uint64_t seed, SimNetworkOptions options = {}, int nodes = 5)
      : world(seed), network(&world, options) {
    for (int i = 1; i <= nodes; ++i) {
      const NodeId id(static_cast<uint64_t>(i));
      world.AddNode(id);
      Transport* t = network.Attach(id);
      t->SetReceiver([this, id](Packet p) {
        received[id].push_back(p);
        arrival_us[id].push_back(world.now_us());
      });
    }
  }
  Transport* t(uint64_t id) { return network.transport(NodeId(id)); }
  // Sends a heartbeat with `index` as a sequence number.
  Transport::SendResult Ping(uint64_t from, uint64_t to, uint64_t index = 0) {
    raft::Message m;
    m.set_type(raft::MSG_HEARTBEAT);
    m.set_from(from);
    m.set_to(to);
    m.set_index(index);
    return t(from)->Send(NodeId(to), m);
  }
  size_t Got(uint64_t id) { return received[NodeId(id)].size(); }
  // Whether `from` can reach `to` right now (one fresh packet, no loss).
  bool Reaches(uint64_t from, uint64_t to) {
    const size_t before = Got(to);
    Ping(from, to);
    world.RunUntil(world.now_us() + 10 * kMicrosPerSecond);
    return Got(to) > before;
  }

  World world;
  SimNetwork network;
  std::map<NodeId, std::vector<Packet>> received;
  std::map<NodeId, std::vector<SimMicros>> arrival_us;
};

SimNetworkOptions NoTail() {
  SimNetworkOptions options;
  options.tail_per_million = 0;
  return options;
}

TEST(SimNetworkTest, DeliversWithinTheLatencyBoundsAndStampsFrom) {
  Net net(1, NoTail());
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(net.Ping(1, 2, static_cast<uint64_t>(i)),
              Transport::SendResult::kQueued);
  }
  net.world.RunUntilIdle(1000);
  ASSERT_EQ(net.Got(2), 100u);
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_GE(net.arrival_us[NodeId(2)][i], 100);
    EXPECT_LE(net.arrival_us[NodeId(2)][i], 2000);
    EXPECT_EQ(net.received[NodeId(2)][i].from, NodeId(1));
    EXPECT_EQ(net.received[NodeId(2)][i].to, NodeId(2));
    EXPECT_EQ(net.received[NodeId(2)][i].kind, Packet::Kind::kRaft);
  }
  EXPECT_EQ(net.network.stats().delivered, 100u);
  EXPECT_EQ(net.network.InFlight(NodeId(1), NodeId(2)), 0u);
  net.network.CheckInvariants();
}

TEST(SimNetworkTest, IndependentLatenciesReorderPackets) {
  Net net(2, NoTail());
  for (uint64_t i = 0; i < 50; ++i) net.Ping(1, 2, i);
  net.world.RunUntilIdle(1000);
  bool reordered = false;
  const auto& got = net.received[NodeId(2)];
  for (size_t i = 1; i < got.size(); ++i) {
    if (got[i].raft.index() < got[i - 1].raft.index()) reordered = true;
  }
  EXPECT_TRUE(reordered);
}

TEST(SimNetworkTest, FifoLinksDeliverInSendOrder) {
  SimNetworkOptions options;
  options.fifo_links = true;
  options.tail_per_million = 100'000;  // plenty of slow packets to overtake
  options.duplicate_per_million = 100'000;
  Net net(2, options);
  for (uint64_t i = 0; i < 500; ++i) net.Ping(1, 2, i);
  net.world.RunUntilIdle(10'000);
  const auto& got = net.received[NodeId(2)];
  ASSERT_GE(got.size(), 500u);
  for (size_t i = 1; i < got.size(); ++i) {
    ASSERT_LE(got[i - 1].raft.index(), got[i].raft.index()) << i;
  }
}

TEST(SimNetworkTest, HeavyTailIsRareAndLong) {
  Net net(3);  // default 1% tail, 10-100x
  const int kPackets = 20'000;
  for (int i = 0; i < kPackets; ++i) {
    net.Ping(1, 2);
    if (i % 1000 == 999) net.world.RunUntilIdle(100'000);  // keep queue low
  }
  net.world.RunUntilIdle(100'000);
  const uint64_t tail = net.network.stats().tail_delayed;
  EXPECT_GT(tail, 100u);  // expect 200
  EXPECT_LT(tail, 320u);
  SimMicros longest = 0;
  for (SimMicros t : net.arrival_us[NodeId(2)]) longest = std::max(longest, t);
  EXPECT_GT(longest, 0);
}

TEST(SimNetworkTest, BytesTravelToo) {
  Net net(4);
  net.t(3)->SendBytes(NodeId(4), "chunk");
  net.world.RunUntilIdle(10);
  ASSERT_EQ(net.Got(4), 1u);
  EXPECT_EQ(net.received[NodeId(4)][0].kind, Packet::Kind::kBytes);
  EXPECT_EQ(net.received[NodeId(4)][0].bytes, "chunk");
}

TEST(SimNetworkTest, LossAndDuplicationRatesArePlausible) {
  SimNetworkOptions options = NoTail();
  options.loss_per_million = 100'000;       // 10%
  options.duplicate_per_million = 200'000;  // 20%
  Net net(5, options);
  const uint64_t kPackets = 10'000;
  for (uint64_t i = 0; i < kPackets; ++i) {
    net.Ping(1 + i % 5, 1 + (i + 1) % 5);
    if (i % 500 == 499) net.world.RunUntilIdle(100'000);
  }
  net.world.RunUntilIdle(100'000);
  const SimNetworkStats& s = net.network.stats();
  // Binomial(10000, 0.1): sd 30; allow 5 sd.
  EXPECT_GT(s.lost, 850u);
  EXPECT_LT(s.lost, 1150u);
  // Binomial(10000, 0.2): sd 40.
  EXPECT_GT(s.duplicated, 1800u);
  EXPECT_LT(s.duplicated, 2200u);
  uint64_t got = 0;
  for (uint64_t id = 1; id <= 5; ++id) got += net.Got(id);
  // Duplicates of lost packets are lost with them.
  EXPECT_EQ(got, s.delivered);
  EXPECT_EQ(s.sent, kPackets);
  net.network.CheckInvariants();
}

TEST(SimNetworkTest, SymmetricPartitionCutsBothWaysAndHealRestores) {
  Net net(6, NoTail());
  net.network.Partition({NodeId(1), NodeId(2)},
                        {NodeId(3), NodeId(4), NodeId(5)});
  EXPECT_TRUE(net.Reaches(1, 2));
  EXPECT_TRUE(net.Reaches(3, 5));
  EXPECT_FALSE(net.Reaches(1, 3));
  EXPECT_FALSE(net.Reaches(4, 2));
  EXPECT_GT(net.network.stats().dropped_partition, 0u);
  net.network.Heal();
  EXPECT_TRUE(net.Reaches(1, 3));
  EXPECT_TRUE(net.Reaches(4, 2));
  EXPECT_EQ(net.network.blocked_links(), 0u);
}

TEST(SimNetworkTest, OneWayPartitionCutsOneDirectionOnly) {
  Net net(7, NoTail());
  net.network.PartitionOneWay({NodeId(1)}, {NodeId(2), NodeId(3)});
  EXPECT_FALSE(net.Reaches(1, 2));
  EXPECT_FALSE(net.Reaches(1, 3));
  EXPECT_TRUE(net.Reaches(2, 1));
  EXPECT_TRUE(net.Reaches(3, 1));
  EXPECT_TRUE(net.Reaches(1, 4));
}

TEST(SimNetworkTest, IsolateCutsOneNodeFromEveryone) {
  Net net(8, NoTail());
  net.network.Isolate(NodeId(3));
  for (uint64_t other : {1, 2, 4, 5}) {
    EXPECT_FALSE(net.Reaches(3, other));
    EXPECT_FALSE(net.Reaches(other, 3));
  }
  EXPECT_TRUE(net.Reaches(1, 5));
}

TEST(SimNetworkTest, BridgeIsNonTransitive) {
  Net net(9, NoTail());
  // 3 sees {1,2} and {4,5}; they cannot see each other.
  net.network.Bridge({NodeId(1), NodeId(2)}, {NodeId(4), NodeId(5)}, NodeId(3));
  EXPECT_TRUE(net.Reaches(3, 1));
  EXPECT_TRUE(net.Reaches(1, 3));
  EXPECT_TRUE(net.Reaches(3, 5));
  EXPECT_TRUE(net.Reaches(5, 3));
  EXPECT_FALSE(net.Reaches(1, 5));
  EXPECT_FALSE(net.Reaches(4, 2));
  EXPECT_TRUE(net.Reaches(1, 2));
}

TEST(SimNetworkTest, PartitionDropsPacketsAlreadyInFlight) {
  Net net(10, NoTail());
  net.Ping(1, 2);
  net.network.Partition({NodeId(1)}, {NodeId(2)});
  net.world.RunUntilIdle(10);
  EXPECT_EQ(net.Got(2), 0u);
  EXPECT_EQ(net.network.stats().dropped_partition, 1u);
  EXPECT_EQ(net.network.InFlight(NodeId(1), NodeId(2)), 0u);
}

TEST(SimNetworkTest, ClogHoldsPacketsAndUnclogReleasesThemInOrder) {
  Net net(11, NoTail());
  EXPECT_TRUE(net.network.Clog(NodeId(2)));
  EXPECT_FALSE(net.network.Clog(NodeId(2)));
  for (uint64_t i = 0; i < 5; ++i) net.Ping(1, 2, i);
  net.Ping(2, 3);
  net.world.RunUntil(1'000'000);
  EXPECT_EQ(net.Got(2), 0u);
  EXPECT_EQ(net.Got(3), 0u);
  EXPECT_EQ(net.network.held_packets(), 6u);
  EXPECT_EQ(net.network.InFlight(NodeId(1), NodeId(2)), 5u);
  net.network.CheckInvariants();
  EXPECT_TRUE(net.network.Unclog(NodeId(2)));
  net.world.RunUntilIdle(100);
  EXPECT_EQ(net.Got(2), 5u);
  EXPECT_EQ(net.Got(3), 1u);
  EXPECT_EQ(net.network.stats().clog_held, 6u);
  EXPECT_EQ(net.network.held_packets(), 0u);
  for (SimMicros t : net.arrival_us[NodeId(2)]) EXPECT_GE(t, 1'000'100);
}

TEST(SimNetworkTest, BoundedQueuePerLink) {
  SimNetworkOptions options = NoTail();
  options.queue_packets_max = 3;
  Net net(12, options);
  EXPECT_EQ(net.Ping(1, 2), Transport::SendResult::kQueued);
  EXPECT_EQ(net.Ping(1, 2), Transport::SendResult::kQueued);
  EXPECT_EQ(net.Ping(1, 2), Transport::SendResult::kQueued);
  EXPECT_EQ(net.Ping(1, 2), Transport::SendResult::kQueueFull);
  EXPECT_EQ(net.Ping(1, 3), Transport::SendResult::kQueued);  // other link
  EXPECT_EQ(net.t(1)->QueuedPackets(NodeId(2)), 3u);
  net.world.RunUntilIdle(100);
  EXPECT_EQ(net.Ping(1, 2), Transport::SendResult::kQueued);
  EXPECT_EQ(net.network.stats().dropped_queue_full, 1u);
}

TEST(SimNetworkTest, UnknownPeerIsUnreachable) {
  Net net(13);
  EXPECT_EQ(net.Ping(1, 99), Transport::SendResult::kUnreachable);
  EXPECT_EQ(net.network.stats().dropped_unknown_peer, 1u);
}

TEST(SimNetworkTest, CrashDropsInFlightAndRestartNeedsANewReceiver) {
  Net net(14, NoTail());
  net.Ping(1, 2);
  net.Ping(1, 2);
  net.world.Crash(NodeId(2));
  EXPECT_EQ(net.network.InFlight(NodeId(1), NodeId(2)), 0u);
  net.Ping(1, 2);  // into the void
  net.world.RunUntil(100'000);
  net.world.Restart(NodeId(2));
  net.world.RunUntil(200'000);
  EXPECT_EQ(net.Got(2), 0u);
  EXPECT_EQ(net.network.stats().dropped_node_down, 3u);
  EXPECT_FALSE(net.Reaches(1, 2));  // no receiver yet
  EXPECT_EQ(net.network.stats().dropped_no_receiver, 1u);
  net.t(2)->SetReceiver(
      [&](Packet p) { net.received[NodeId(2)].push_back(p); });
  EXPECT_TRUE(net.Reaches(1, 2));
  net.network.CheckInvariants();
}

TEST(SimNetworkTest, PausedDestinationGetsPacketsAtResume) {
  Net net(15, NoTail());
  net.world.Pause(NodeId(2));
  net.Ping(1, 2);
  net.world.RunUntil(50'000);
  EXPECT_EQ(net.Got(2), 0u);
  net.world.Resume(NodeId(2));
  net.world.RunUntilIdle(10);
  ASSERT_EQ(net.Got(2), 1u);
  EXPECT_EQ(net.arrival_us[NodeId(2)][0], 50'000);
}

// Ping-pong between every pair with loss and duplication; returns the
// event hash mixed with the arrival times.
uint64_t RunTraffic(uint64_t seed) {
  SimNetworkOptions options;
  options.loss_per_million = 50'000;
  options.duplicate_per_million = 50'000;
  World world(seed);
  SimNetwork network(&world, options);
  uint64_t hash = 0;
  for (uint64_t i = 1; i <= 5; ++i) {
    world.AddNode(NodeId(i));
    Transport* t = network.Attach(NodeId(i));
    t->SetReceiver([t, &world, &hash](Packet p) {
      hash = hash * 31 + static_cast<uint64_t>(world.now_us()) + p.raft.index();
      if (p.raft.index() < 20) {
        raft::Message reply;
        reply.set_index(p.raft.index() + 1);
        t->Send(p.from, reply);
      }
    });
  }
  for (uint64_t i = 1; i <= 5; ++i) {
    for (uint64_t j = 1; j <= 5; ++j) {
      if (i != j)
        network.transport(NodeId(i))->Send(NodeId(j), raft::Message());
    }
  }
  world.RunUntilIdle(1'000'000);
  network.CheckInvariants();
  return hash ^ world.event_hash();
}

TEST(SimNetworkTest, SameSeedSameDeliveries) {
  EXPECT_EQ(RunTraffic(21), RunTraffic(21));
  EXPECT_NE(RunTraffic(21), RunTraffic(22));
}

TEST(SimNetworkTest, ObserverSeesEveryFate) {
  SimNetworkOptions options = NoTail();
  options.queue_packets_max = 1;
  Net net(31, options);
  std::vector<std::string> fates;
  net.network.SetObserver([&](const Packet& p, PacketFate fate) {
    fates.push_back(std::to_string(p.from.value()) + ">" +
                    std::to_string(p.to.value()) + " " +
                    std::string(PacketFateName(fate)));
  });
  net.Ping(1, 2);
  net.Ping(1, 2);   // queue full
  net.Ping(1, 99);  // unknown
  net.world.RunUntilIdle(10);
  net.network.Partition({NodeId(1)}, {NodeId(3)});
  net.Ping(1, 3);
  net.world.RunUntilIdle(10);
  EXPECT_EQ(fates, (std::vector<std::string>{
                       "1>2 sent", "1>2 queue_full", "1>99 unknown_peer",
                       "1>2 delivered", "1>3 sent", "1>3 partitioned"}));
}

TEST(SimNetworkTest, StatsByKindNamesEveryCounter) {
  Net net(32);
  net.Ping(1, 2);
  net.world.RunUntilIdle(10);
  const auto kinds = net.network.stats().ByKind();
  EXPECT_EQ(kinds.size(), sizeof(SimNetworkStats) / sizeof(uint64_t));
  EXPECT_EQ(kinds[0], (std::pair<std::string, uint64_t>{"sent", 1}));
  EXPECT_EQ(kinds[1], (std::pair<std::string, uint64_t>{"delivered", 1}));
}

TEST(SimNetworkTest, OptionsAreValidated) {
  SimNetworkOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.latency_max_us = 10;
  EXPECT_FALSE(options.Validate().ok());
  options = SimNetworkOptions();
  options.loss_per_million = 1'000'001;
  EXPECT_FALSE(options.Validate().ok());
  options = SimNetworkOptions();
  options.queue_packets_max = 0;
  EXPECT_FALSE(options.Validate().ok());
}

}  // namespace
}  // namespace blixard::sim
