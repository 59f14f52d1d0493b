#include "core/host/testing/host_harness.h"

#include <algorithm>
#include <utility>

#include "core/base/check.h"

namespace blixard::host::testing {

HostOptions TestOptions(NodeId id, std::vector<NodeId> voters) {
  HostOptions options;
  options.id = id;
  // Named voters bootstrap a new cluster; any other node joins one.
  options.initial_cluster_state = std::find(voters.begin(), voters.end(), id) != voters.end()
                                      ? InitialClusterState::kNew
                                      : InitialClusterState::kExisting;
  options.initial_voters = std::move(voters);
  options.tick_us = kTestTickUs;
  options.election_ticks = 10;
  options.heartbeat_ticks = 1;
  options.raft_seed = id.value();
  options.snapshot_interval_entries = 1'000'000;
  return options;
}

// ---------------------------------------------------------------- TestNode

TestNode::TestNode(HostOptions options, ScriptedNetwork* network)
    : options_(std::move(options)), env_(options_.id, network) {}

absl::Status TestNode::Start() {
  CHECK(host_ == nullptr) << id() << " is already running";
  observer_ = std::make_unique<RecordingObserver>();
  // Each process of a node draws its own seed (HostOptions::raft_seed):
  // the first start uses the configured one, each restart another.
  HostOptions options = options_;
  options.raft_seed += 0x9e3779b97f4a7c15ULL * starts_++;
  host_ = std::make_unique<Host>(std::move(options), env_.env(), &logger_, observer_.get());
  return host_->Start();
}

void TestNode::Crash() {
  host_.reset();
  env_.Crash();
}

// ---------------------------------------------------------------- TestCluster

TestCluster::TestCluster(std::vector<NodeId> ids, const std::function<void(HostOptions&)>& adjust) {
  for (NodeId id : ids) {
    HostOptions options = TestOptions(id, ids);
    if (adjust) adjust(options);
    nodes_[id] = std::make_unique<TestNode>(std::move(options), &network_);
  }
}

TestNode& TestCluster::node(NodeId id) {
  auto it = nodes_.find(id);
  CHECK(it != nodes_.end()) << "no node " << id;
  return *it->second;
}

std::vector<NodeId> TestCluster::ids() const {
  std::vector<NodeId> ids;
  for (const auto& [id, node] : nodes_) ids.push_back(id);
  return ids;
}

void TestCluster::StartAll() {
  for (auto& [id, node] : nodes_) CHECK_OK(node->Start());
  Settle();
}

void TestCluster::Settle(const PacketPredicate& hold, const PacketPredicate& drop) {
  for (size_t round = 0;; ++round) {
    CHECK_LT(round, kSettleRoundsMax) << "the cluster never settles";
    size_t progress = 0;
    for (auto& [id, node] : nodes_) {
      if (node->running() && !node->hold_writes()) progress += node->store().CompleteAll();
    }
    if (drop) progress += network_.DropWhere(drop);
    // One packet at a time: deliveries send more, and writes they queue
    // complete in the next round (so a test's hold/drop sees every packet).
    const std::vector<const SentPacket*> ready =
        network_.InFlightWhere([&](const Packet& packet) { return !hold || !hold(packet); });
    std::vector<uint64_t> sequences;
    for (const SentPacket* sent : ready) sequences.push_back(sent->sequence);
    for (uint64_t sequence : sequences) {
      if (network_.Deliver(sequence)) ++progress;
    }
    if (progress == 0) break;
  }
  // LogCabin's habit: the invariants after every settled step.
  for (auto& [id, node] : nodes_) {
    if (node->running()) node->host().CheckInvariants();
  }
}

void TestCluster::AdvanceTo(MonoMicros to, const PacketPredicate& hold,
                            const PacketPredicate& drop) {
  CHECK_GE(to, now_);
  for (size_t fired = 0;; ++fired) {
    CHECK_LT(fired, kTimerFiresPerRunMax);
    std::optional<MonoMicros> next;
    for (auto& [id, node] : nodes_) {
      const std::optional<MonoMicros> deadline = node->env().timers().NextDeadline();
      if (deadline.has_value() && (!next.has_value() || *deadline < *next)) next = deadline;
    }
    if (!next.has_value() || *next > to) break;
    now_ = std::max(now_, *next);
    for (auto& [id, node] : nodes_) {
      if (node->env().clock().now() < now_) node->env().clock().Set(now_);
    }
    for (auto& [id, node] : nodes_) {
      node->env().timers().RunDue();
      Settle(hold, drop);
    }
  }
  now_ = to;
  for (auto& [id, node] : nodes_) {
    if (node->env().clock().now() < now_) node->env().clock().Set(now_);
  }
}

void TestCluster::AdvanceBy(int64_t delta_us, const PacketPredicate& hold,
                            const PacketPredicate& drop) {
  AdvanceTo(now_ + delta_us, hold, drop);
}

NodeId TestCluster::ElectLeader(int64_t within_us) {
  const MonoMicros deadline = now_ + within_us;
  while (now_ < deadline) {
    AdvanceBy(kTestTickUs);
    for (auto& [id, node] : nodes_) {
      if (!node->running() || !node->host().is_leader()) continue;
      bool known = true;
      for (auto& [other_id, other] : nodes_) {
        if (other->running() && other->host().leader() != id) known = false;
      }
      if (known) return id;
    }
  }
  CHECK(false) << "no leader elected within " << within_us << " us";
  return kNoNode;
}

// ---------------------------------------------------------------- requests

api::ClientRequest CommandRequest(cluster::Command command, uint64_t client_id, uint64_t sequence) {
  api::ClientRequest request;
  if (client_id != 0) {
    command.mutable_request_id()->set_client_id(client_id);
    command.mutable_request_id()->set_sequence(sequence);
  }
  *request.mutable_command() = std::move(command);
  return request;
}

api::ClientRequest PutRequest(const std::string& key, const std::string& value, uint64_t client_id,
                              uint64_t sequence) {
  cluster::Command command;
  command.mutable_kv_put()->set_key(key);
  command.mutable_kv_put()->set_value(value);
  return CommandRequest(std::move(command), client_id, sequence);
}

api::ClientRequest GetRequest(const std::string& key) {
  api::ClientRequest request;
  request.mutable_query()->set_kv_get(key);
  return request;
}

Host::Reply ReplySlot::Callback() {
  return [this](const api::ClientResponse& got) {
    ++count;
    response = got;
  };
}

// ---------------------------------------------------------------- predicates

namespace {
bool Matches(NodeId want, NodeId got) { return want.is_none() || want == got; }
}  // namespace

PacketPredicate RaftMessage(raft::MessageType type, NodeId from, NodeId to) {
  return [=](const Packet& packet) {
    return packet.kind == Packet::Kind::kRaft && packet.raft.type() == type &&
           Matches(from, packet.from) && Matches(to, packet.to);
  };
}

PacketPredicate AnyPacket(NodeId from, NodeId to) {
  return [=](const Packet& packet) { return Matches(from, packet.from) && Matches(to, packet.to); };
}

PacketPredicate HostBytes(NodeId from, NodeId to) {
  return [=](const Packet& packet) {
    return packet.kind == Packet::Kind::kBytes && Matches(from, packet.from) &&
           Matches(to, packet.to);
  };
}

PacketPredicate Involving(NodeId node) {
  return [=](const Packet& packet) { return packet.from == node || packet.to == node; };
}

// ---------------------------------------------------------------- log contents

namespace {
void AppendCommands(const std::vector<raft::Entry>& entries, std::vector<cluster::Command>& out) {
  for (const raft::Entry& entry : entries) {
    if (entry.type() != raft::ENTRY_NORMAL || entry.data().empty()) continue;
    cluster::Command command;
    CHECK(command.ParseFromString(entry.data())) << "entry " << entry.index();
    out.push_back(std::move(command));
  }
}
}  // namespace

std::vector<cluster::Command> CommandsWritten(const ScriptedLogStore& store) {
  std::vector<cluster::Command> out;
  for (const ScriptedLogStore::RecordedWrite& record : store.writes()) {
    AppendCommands(record.write.entries, out);
  }
  return out;
}

std::vector<cluster::Command> DurableCommands(const ScriptedLogStore& store) {
  std::vector<cluster::Command> out;
  AppendCommands(store.durable().entries(), out);
  return out;
}

size_t CountCommands(const std::vector<cluster::Command>& commands, cluster::Command::OpCase op) {
  return static_cast<size_t>(
      std::count_if(commands.begin(), commands.end(),
                    [&](const cluster::Command& command) { return command.op_case() == op; }));
}

Packet HostPacket(NodeId from, NodeId to, const HostMessage& message) {
  Packet packet;
  packet.from = from;
  packet.to = to;
  packet.kind = Packet::Kind::kBytes;
  packet.bytes = message.SerializeAsString();
  return packet;
}

api::ClientResponse SubmitAndSettle(TestCluster& cluster, NodeId node,
                                    api::ClientRequest request) {
  ReplySlot slot;
  cluster.host(node).Submit(std::move(request), slot.Callback());
  cluster.Settle();
  CHECK_EQ(slot.count, 1) << "a request is answered exactly once";
  return slot.response;
}

std::vector<const SentPacket*> HoldVoteRequests(TestCluster& cluster) {
  const PacketPredicate votes = RaftMessage(raft::MSG_VOTE);
  for (int tick = 0; tick < 100 && cluster.network().CountInFlight(votes) == 0; ++tick) {
    cluster.AdvanceBy(kTestTickUs, votes);
  }
  return cluster.network().InFlightWhere(votes);
}

}  // namespace blixard::host::testing
