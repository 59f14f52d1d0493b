#include "sim/sim_network.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::sim {
namespace {

constexpr uint64_t kMillion = 1'000'000;
// Latencies stay far below this, so times never overflow.
constexpr int64_t kLatencyMaxUs = 60 * kMicrosPerSecond;

}  // namespace

absl::string_view PacketFateName(PacketFate fate) {
  switch (fate) {
    case PacketFate::kSent:
      return "sent";
    case PacketFate::kDelivered:
      return "delivered";
    case PacketFate::kLost:
      return "lost";
    case PacketFate::kDuplicated:
      return "duplicated";
    case PacketFate::kQueueFull:
      return "queue_full";
    case PacketFate::kUnknownPeer:
      return "unknown_peer";
    case PacketFate::kPartitioned:
      return "partitioned";
    case PacketFate::kNodeDown:
      return "node_down";
    case PacketFate::kNoReceiver:
      return "no_receiver";
    case PacketFate::kHeld:
      return "held";
  }
  return "?";
}

std::vector<std::pair<std::string, uint64_t>> SimNetworkStats::ByKind() const {
  return {{"sent", sent},
          {"delivered", delivered},
          {"lost", lost},
          {"duplicated", duplicated},
          {"tail_delayed", tail_delayed},
          {"dropped_queue_full", dropped_queue_full},
          {"dropped_unknown_peer", dropped_unknown_peer},
          {"dropped_partition", dropped_partition},
          {"dropped_node_down", dropped_node_down},
          {"dropped_no_receiver", dropped_no_receiver},
          {"clog_held", clog_held},
          {"partitions", partitions},
          {"heals", heals},
          {"clogs", clogs}};
}

absl::Status SimNetworkOptions::Validate() const {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("SimNetworkOptions: ", what));
  };
  if (latency_min_us < 0) return bad("latency_min_us < 0");
  if (latency_max_us < latency_min_us)
    return bad("latency_max_us < latency_min_us");
  if (tail_multiplier_min < 1) return bad("tail_multiplier_min < 1");
  if (tail_multiplier_max < tail_multiplier_min) {
    return bad("tail_multiplier_max < tail_multiplier_min");
  }
  if (static_cast<uint64_t>(latency_max_us) * tail_multiplier_max >
      static_cast<uint64_t>(kLatencyMaxUs)) {
    return bad("latency_max_us * tail_multiplier_max exceeds 60 s");
  }
  if (tail_per_million > kMillion) return bad("tail_per_million > 1e6");
  if (loss_per_million > kMillion) return bad("loss_per_million > 1e6");
  if (duplicate_per_million > kMillion)
    return bad("duplicate_per_million > 1e6");
  if (queue_packets_max == 0) return bad("queue_packets_max == 0");
  return absl::OkStatus();
}

class SimNetwork::Endpoint final : public Transport {
 public:
  Endpoint(SimNetwork* network, NodeId self) : network_(network), self_(self) {}

  NodeId self() const override { return self_; }

  void SetReceiver(Receiver receiver) override {
    CHECK(receiver);
    CHECK(!receiver_) << "receiver of " << self_ << " registered twice";
    receiver_ = std::move(receiver);
  }

  // Packets are built in their slot: the payload is moved once.
  SendResult Send(NodeId to, raft::Message message) override {
    uint32_t slot = 0;
    NewPacket(to, Packet::Kind::kRaft, &slot).raft = std::move(message);
    return network_->Send(slot);
  }

  SendResult SendBytes(NodeId to, std::string bytes) override {
    uint32_t slot = 0;
    NewPacket(to, Packet::Kind::kBytes, &slot).bytes = std::move(bytes);
    return network_->Send(slot);
  }

  size_t QueuedPackets(NodeId to) const override {
    return network_->InFlight(self_, to);
  }

  const Receiver& receiver() const { return receiver_; }
  void ClearReceiver() { receiver_ = nullptr; }

 private:
  // A packet from this node to `to`, payload empty, in a new slot (*slot).
  Packet& NewPacket(NodeId to, Packet::Kind kind, uint32_t* slot) {
    *slot = network_->NewSlot();
    Packet& packet = network_->parked(*slot);
    packet.from = self_;
    packet.to = to;
    packet.kind = kind;
    return packet;
  }

  SimNetwork* network_;
  NodeId self_;
  Receiver receiver_;
};

SimNetwork::SimNetwork(World* world, const SimNetworkOptions& options)
    : world_(world), options_(options), rng_(world->Stream("network")) {
  CHECK_OK(options.Validate());
  world_->AddLifecycleListener([this](NodeId node, LifecycleChange change) {
    OnLifecycle(node, change);
  });
}

SimNetwork::~SimNetwork() = default;

Transport* SimNetwork::Attach(NodeId node) {
  CHECK(world_->HasNode(node)) << node;
  CHECK(endpoints_.count(node) == 0) << node << " attached twice";
  auto endpoint = std::make_unique<Endpoint>(this, node);
  Transport* result = endpoint.get();
  endpoints_.emplace(node, std::move(endpoint));
  return result;
}

Transport* SimNetwork::transport(NodeId node) const {
  auto it = endpoints_.find(node);
  CHECK(it != endpoints_.end()) << node << " not attached";
  return it->second.get();
}

void SimNetwork::SetLossPerMillion(uint64_t per_million) {
  CHECK_LE(per_million, kMillion);
  options_.loss_per_million = per_million;
}

void SimNetwork::SetDuplicatePerMillion(uint64_t per_million) {
  CHECK_LE(per_million, kMillion);
  options_.duplicate_per_million = per_million;
}

size_t SimNetwork::InFlight(NodeId from, NodeId to) const {
  auto it = in_flight_.find({from, to});
  return it == in_flight_.end() ? 0 : it->second;
}

int64_t SimNetwork::DrawLatency() {
  uint64_t latency = rng_.Range(static_cast<uint64_t>(options_.latency_min_us),
                                static_cast<uint64_t>(options_.latency_max_us));
  if (rng_.Chance(options_.tail_per_million, kMillion)) {
    latency *=
        rng_.Range(options_.tail_multiplier_min, options_.tail_multiplier_max);
    ++stats_.tail_delayed;
  }
  return static_cast<int64_t>(latency);
}

Transport::SendResult SimNetwork::Send(uint32_t slot) {
  Packet& packet = parked(slot);
  CHECK_NE(packet.from, packet.to) << "a node does not send to itself";
  CHECK(!world_->IsCrashed(packet.from))
      << "crashed " << packet.from << " sent";
  // A packet that goes no further: counted, observed, its slot freed.
  auto drop = [&](uint64_t& counter, PacketFate fate, Transport::SendResult result) {
    ++counter;
    Observe(packet, fate);
    FreeSlot(slot);
    return result;
  };
  if (endpoints_.count(packet.to) == 0) {
    return drop(stats_.dropped_unknown_peer, PacketFate::kUnknownPeer,
                Transport::SendResult::kUnreachable);
  }
  size_t& in_flight = in_flight_[{packet.from, packet.to}];
  if (in_flight >= options_.queue_packets_max) {
    return drop(stats_.dropped_queue_full, PacketFate::kQueueFull,
                Transport::SendResult::kQueueFull);
  }
  ++stats_.sent;
  Observe(packet, PacketFate::kSent);
  // Draws happen in a fixed order whatever the outcome, so one packet's
  // fate never depends on whether the node it is sent to is up.
  const bool lost = rng_.Chance(options_.loss_per_million, kMillion);
  const bool duplicate = rng_.Chance(options_.duplicate_per_million, kMillion);
  // Accepted either way: a real wire does not tell the sender.
  if (world_->IsCrashed(packet.to)) {
    return drop(stats_.dropped_node_down, PacketFate::kNodeDown,
                Transport::SendResult::kQueued);
  }
  if (lost) return drop(stats_.lost, PacketFate::kLost, Transport::SendResult::kQueued);
  if (duplicate) {
    ++stats_.duplicated;
    Observe(packet, PacketFate::kDuplicated);
    ++in_flight;
    // A deque: parking the copy leaves `packet` where it is.
    ScheduleDelivery(Park(Packet(packet)));
  }
  ++in_flight;
  ScheduleDelivery(slot);
  return Transport::SendResult::kQueued;
}

uint32_t SimNetwork::NewSlot() {
  if (free_slots_.empty()) {
    slots_.emplace_back(std::in_place);
    return static_cast<uint32_t>(slots_.size() - 1);
  }
  const uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  CHECK(!slots_[slot].has_value());
  slots_[slot].emplace();
  return slot;
}

uint32_t SimNetwork::Park(Packet&& packet) {
  const uint32_t slot = NewSlot();
  *slots_[slot] = std::move(packet);
  return slot;
}

Packet& SimNetwork::parked(uint32_t slot) {
  CHECK_LT(slot, slots_.size());
  CHECK(slots_[slot].has_value()) << "packet slot " << slot << " is empty";
  return *slots_[slot];
}

void SimNetwork::FreeSlot(uint32_t slot) {
  CHECK_LT(slot, slots_.size());
  CHECK(slots_[slot].has_value()) << "packet slot " << slot << " freed twice";
  slots_[slot].reset();
  free_slots_.push_back(slot);
}

void SimNetwork::ScheduleDelivery(uint32_t slot) {
  const Packet& packet = parked(slot);
  const NodeId to = packet.to;
  SimMicros at = world_->now_us() + DrawLatency();
  if (options_.fifo_links) {
    SimMicros& last = last_arrival_us_[{packet.from, packet.to}];
    at = std::max(at, last);  // equal times keep send order
    last = at;
  }
  world_->Schedule(at, to, [this, slot] { Deliver(slot); });
}

void SimNetwork::Deliver(uint32_t slot) {
  Packet& packet = parked(slot);
  const Link link{packet.from, packet.to};
  if (IsClogged(packet.from) || IsClogged(packet.to)) {
    ++stats_.clog_held;
    Observe(packet, PacketFate::kHeld);
    held_.push_back(std::move(packet));
    FreeSlot(slot);
    return;
  }
  size_t& in_flight = in_flight_[link];
  CHECK_GT(in_flight, 0u);
  --in_flight;
  auto it = endpoints_.find(packet.to);
  CHECK(it != endpoints_.end());
  const Transport::Receiver& receiver = it->second->receiver();
  if (LinkBlocked(packet.from, packet.to)) {
    ++stats_.dropped_partition;
    Observe(packet, PacketFate::kPartitioned);
  } else if (!receiver) {
    ++stats_.dropped_no_receiver;
    Observe(packet, PacketFate::kNoReceiver);
  } else {
    ++stats_.delivered;
    Observe(packet, PacketFate::kDelivered);
    // Crashes are events of their own, never inside a delivery, so the slot
    // is still this packet's when the receiver returns (FreeSlot checks).
    receiver(std::move(packet));
  }
  FreeSlot(slot);
}

void SimNetwork::Block(NodeId from, NodeId to) {
  if (from != to) blocked_.insert({from, to});
}

void SimNetwork::Partition(const std::vector<NodeId>& a,
                           const std::vector<NodeId>& b) {
  for (NodeId x : a) {
    for (NodeId y : b) {
      CHECK_NE(x, y) << "a node on both sides of a partition";
      Block(x, y);
      Block(y, x);
    }
  }
  ++stats_.partitions;
}

void SimNetwork::PartitionOneWay(const std::vector<NodeId>& from,
                                 const std::vector<NodeId>& to) {
  for (NodeId x : from) {
    for (NodeId y : to) {
      CHECK_NE(x, y) << "a node on both sides of a partition";
      Block(x, y);
    }
  }
  ++stats_.partitions;
}

void SimNetwork::Isolate(NodeId node) {
  for (const auto& [other, endpoint] : endpoints_) {
    Block(node, other);
    Block(other, node);
  }
  ++stats_.partitions;
}

void SimNetwork::Bridge(const std::vector<NodeId>& a,
                        const std::vector<NodeId>& b, NodeId bridge) {
  for (NodeId x : a) CHECK_NE(x, bridge) << "the bridge is in a group";
  for (NodeId x : b) CHECK_NE(x, bridge) << "the bridge is in a group";
  Partition(a, b);
}

void SimNetwork::Heal() {
  blocked_.clear();
  clogged_.clear();
  ++stats_.heals;
  ReleaseHeld();
}

bool SimNetwork::Clog(NodeId node) {
  if (!clogged_.insert(node).second) return false;
  ++stats_.clogs;
  return true;
}

bool SimNetwork::Unclog(NodeId node) {
  if (clogged_.erase(node) == 0) return false;
  ReleaseHeld();
  return true;
}

void SimNetwork::ReleaseHeld() {
  std::deque<Packet> still_held;
  while (!held_.empty()) {
    Packet packet = std::move(held_.front());
    held_.pop_front();
    if (IsClogged(packet.from) || IsClogged(packet.to)) {
      still_held.push_back(std::move(packet));
    } else {
      ScheduleDelivery(Park(std::move(packet)));  // still counted in flight
    }
  }
  held_.swap(still_held);
}

void SimNetwork::OnLifecycle(NodeId node, LifecycleChange change) {
  if (change != LifecycleChange::kCrash) return;
  // The World drops the crashed node's delivery events; forget them here
  // (and free their slots).
  for (uint32_t slot = 0; slot < slots_.size(); ++slot) {
    if (slots_[slot].has_value() && slots_[slot]->to == node) {
      slots_[slot].reset();
      free_slots_.push_back(slot);
    }
  }
  for (auto& [link, count] : in_flight_) {
    if (link.second == node) {
      stats_.dropped_node_down += count;
      count = 0;
    }
  }
  std::deque<Packet> kept;
  for (Packet& packet : held_) {
    if (packet.to != node) kept.push_back(std::move(packet));
  }
  held_.swap(kept);
  auto it = endpoints_.find(node);
  if (it != endpoints_.end()) it->second->ClearReceiver();
}

void SimNetwork::CheckInvariants() const {
  CHECK_OK(options_.Validate());
  size_t total = 0;
  for (const auto& [link, count] : in_flight_) {
    CHECK_LE(count, options_.queue_packets_max + 1)  // +1: a duplicate
        << "link " << link.first << "->" << link.second;
    total += count;
  }
  // Every packet counted in flight is parked (its delivery event pending)
  // or held by a clog.
  size_t parked = 0;
  for (const std::optional<Packet>& slot : slots_) parked += slot.has_value() ? 1 : 0;
  CHECK_EQ(parked + free_slots_.size(), slots_.size());
  CHECK_EQ(total, parked + held_.size());
  for (const Link& link : blocked_) CHECK_NE(link.first, link.second);
  for (const Packet& packet : held_) {
    CHECK(IsClogged(packet.from) || IsClogged(packet.to))
        << "a held packet on an unclogged link";
    CHECK_GT(InFlight(packet.from, packet.to), 0u);
  }
}

}  // namespace blixard::sim
