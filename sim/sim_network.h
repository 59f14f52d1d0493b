// SimNetwork: the simulated network, and each node's Transport onto it.
//
// Every packet gets its own latency, drawn from the "network" sub-stream:
// uniform in [latency_min_us, latency_max_us], and with a small chance
// (tail_per_million) multiplied by [tail_multiplier_min, tail_multiplier_max]
// (a heavy tail: GC pauses, retransmits, a congested switch). Independent
// latencies reorder packets (unless fifo_links). Packets may also be lost or
// duplicated at seeded per-million rates. All arithmetic is integer.
//
// Faults, all decided at delivery time (a packet in flight when a partition
// starts is lost, as on a TCP connection that breaks):
//   - partitions: a set of blocked directed links. Partition(a, b) blocks
//     both directions between two groups; PartitionOneWay(a, b) only a -> b;
//     Isolate(n) cuts n off; Bridge(a, b, n) partitions a from b while n
//     still reaches both (non-transitive: n's view disagrees with a's and
//     b's). Heal() removes them all.
//   - clogs (FoundationDB's swizzle-clog): packets from or to a clogged node
//     are held, not dropped, and released in order with fresh latencies when
//     the last clog on their link is lifted.
//   - a crashed destination: packets in flight to it vanish (the World drops
//     their events); packets sent to a node that is down are dropped.
// Each drop and each fault is counted by kind in stats().
//
// Each directed link holds at most queue_packets_max packets in flight; a
// Send beyond that returns kQueueFull (the Transport contract).
//
// Thread: the simulation's single thread. Construct after the World; it
// registers a lifecycle listener, so it must outlive the World's run.
#ifndef BLIXARD_SIM_SIM_NETWORK_H_
#define BLIXARD_SIM_SIM_NETWORK_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/base/rng.h"
#include "core/env.h"
#include "sim/world.h"

namespace blixard::sim {

struct SimNetworkOptions {
  int64_t latency_min_us = 100;
  int64_t latency_max_us = 2000;
  uint64_t tail_per_million = 10'000;  // 1%
  uint64_t tail_multiplier_min = 10;
  uint64_t tail_multiplier_max = 100;
  uint64_t loss_per_million = 0;
  uint64_t duplicate_per_million = 0;
  size_t queue_packets_max = Transport::kQueuePacketsMax;
  // When true, each directed link delivers in send order, like one TCP
  // connection (a packet never overtakes an earlier one on its link; a slow
  // packet holds up those behind it). When false, latencies are independent
  // and packets reorder.
  bool fifo_links = false;

  // INVALID_ARGUMENT naming the first bad field.
  absl::Status Validate() const;
};

// Counters by kind.
struct SimNetworkStats {
  // Send calls that were accepted.
  uint64_t sent = 0;
  // Receiver calls.
  uint64_t delivered = 0;
  // Random loss.
  uint64_t lost = 0;
  // Extra copies scheduled.
  uint64_t duplicated = 0;
  // Packets that drew a heavy-tail latency.
  uint64_t tail_delayed = 0;
  // Send returned kQueueFull.
  uint64_t dropped_queue_full = 0;
  // Send returned kUnreachable.
  uint64_t dropped_unknown_peer = 0;
  // Link blocked at delivery time.
  uint64_t dropped_partition = 0;
  // Destination crashed (at send, or while the packet was in flight).
  uint64_t dropped_node_down = 0;
  // Destination up but no receiver registered (a Host not yet rebuilt).
  uint64_t dropped_no_receiver = 0;
  // Packets held by a clog.
  uint64_t clog_held = 0;
  // Partition, PartitionOneWay, Isolate and Bridge calls.
  uint64_t partitions = 0;
  uint64_t heals = 0;
  uint64_t clogs = 0;

  std::vector<std::pair<std::string, uint64_t>> ByKind() const;
};

// What happened to a packet, for an observer (traces, timelines, tests).
enum class PacketFate : uint8_t {
  kSent = 0,  // accepted by Send (its fate follows)
  kDelivered = 1,
  kLost = 2,
  kDuplicated = 3,  // an extra copy was scheduled
  kQueueFull = 4,
  kUnknownPeer = 5,
  kPartitioned = 6,
  // Destination down at send. (Packets in flight when it crashes are
  // counted in stats, not observed: the World drops their events.)
  kNodeDown = 7,
  kNoReceiver = 8,
  kHeld = 9,  // held by a clog
};
absl::string_view PacketFateName(PacketFate fate);

class SimNetwork {
 public:
  using Observer = std::function<void(const Packet& packet, PacketFate fate)>;

  // REQUIRES: options.Validate().ok().
  SimNetwork(World* world, const SimNetworkOptions& options);
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // Attaches a node and returns its Transport, owned by the network.
  // REQUIRES: world->HasNode(node); not attached yet.
  Transport* Attach(NodeId node);
  // REQUIRES: Attach(node) was called.
  Transport* transport(NodeId node) const;

  // Rates, changeable during the run. REQUIRES: per_million <= 1'000'000.
  void SetLossPerMillion(uint64_t per_million);
  void SetDuplicatePerMillion(uint64_t per_million);
  const SimNetworkOptions& options() const { return options_; }

  // Partitions. Node lists may name unattached ids (they are ignored when
  // packets flow). A group must not contain the same node as the other.
  void Partition(const std::vector<NodeId>& a, const std::vector<NodeId>& b);
  void PartitionOneWay(const std::vector<NodeId>& from,
                       const std::vector<NodeId>& to);
  void Isolate(NodeId node);
  // REQUIRES: `bridge` is in neither group.
  void Bridge(const std::vector<NodeId>& a, const std::vector<NodeId>& b,
              NodeId bridge);
  // Removes every partition and lifts every clog.
  void Heal();
  bool LinkBlocked(NodeId from, NodeId to) const {
    return blocked_.count({from, to}) != 0;
  }
  size_t blocked_links() const { return blocked_.size(); }

  // Clogs. Clog returns false when already clogged, Unclog when not.
  bool Clog(NodeId node);
  bool Unclog(NodeId node);
  bool IsClogged(NodeId node) const { return clogged_.count(node) != 0; }
  size_t held_packets() const { return held_.size(); }

  // Packets in flight (scheduled or held) on from -> to.
  size_t InFlight(NodeId from, NodeId to) const;

  const SimNetworkStats& stats() const { return stats_; }

  // Called for every packet fate, before delivery for kDelivered. At most
  // one; an empty function removes it. Must not send.
  void SetObserver(Observer observer) { observer_ = std::move(observer); }

  void CheckInvariants() const;

 private:
  class Endpoint;
  using Link = std::pair<NodeId, NodeId>;

  // Sends the packet built in `slot` (its fate decides whether the slot is
  // freed now or at delivery).
  Transport::SendResult Send(uint32_t slot);
  void ScheduleDelivery(uint32_t slot);
  // Delivers the packet parked in `slot` and frees the slot.
  void Deliver(uint32_t slot);
  // Packets in flight wait in slots, and their delivery events capture only
  // the slot number: a closure that small lives inside the std::function
  // (no allocation). The receiver consumes the packet in its slot, so a Raft
  // message is moved twice on its way (into the Packet, into the slot)
  // instead of seven times.
  uint32_t NewSlot();  // holds a default Packet
  uint32_t Park(Packet&& packet);
  Packet& parked(uint32_t slot);
  void FreeSlot(uint32_t slot);
  void ReleaseHeld();
  int64_t DrawLatency();
  void OnLifecycle(NodeId node, LifecycleChange change);
  void Block(NodeId from, NodeId to);
  void Observe(const Packet& packet, PacketFate fate) {
    if (observer_) observer_(packet, fate);
  }

  World* world_;
  SimNetworkOptions options_;
  Rng rng_;
  std::map<NodeId, std::unique_ptr<Endpoint>> endpoints_;
  std::map<Link, size_t> in_flight_;
  std::map<Link, SimMicros> last_arrival_us_;  // fifo_links only
  std::set<Link> blocked_;
  std::set<NodeId> clogged_;
  std::deque<Packet> held_;
  // A deque: a receiver consumes its packet in place while the packets it
  // sends are parked, so parking must not move the others.
  std::deque<std::optional<Packet>> slots_;
  std::vector<uint32_t> free_slots_;
  SimNetworkStats stats_;
  Observer observer_;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIM_NETWORK_H_
