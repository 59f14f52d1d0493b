#include "net/testing/fault_harness.h"

#include <signal.h>

#include <algorithm>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"
#include "core/proto/api.pb.h"

namespace blixard::net::testing {
namespace {

void SleepMs(uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::vector<int> Others(const std::vector<int>& all, const std::set<int>& group) {
  std::vector<int> out;
  for (int id : all) {
    if (group.count(id) == 0) out.push_back(id);
  }
  return out;
}

}  // namespace

const char* ScheduleName(Schedule schedule) {
  switch (schedule) {
    case Schedule::kKillLeader: return "kill_leader";
    case Schedule::kKillAny: return "kill_any";
    case Schedule::kPause: return "pause";
    case Schedule::kMajorityMinority: return "majority_minority";
    case Schedule::kOneWay: return "one_way";
    case Schedule::kRing: return "ring";
    case Schedule::kBridge: return "bridge";
    case Schedule::kMixed: return "mixed";
    case Schedule::kKillAndPartition: return "kill_and_partition";
  }
  return "?";
}

std::string FaultCounts::ToString() const {
  return absl::StrCat("rounds=", rounds, " kills=", kills, " restarts=", restarts,
                      " pauses=", pauses, " partitions=", partitions, " heals=", heals);
}

absl::StatusOr<std::unique_ptr<FaultHarness>> FaultHarness::Create(FaultHarnessOptions options,
                                                                   KvHistory* history) {
  CHECK(history != nullptr);
  CHECK(options.nodes >= 1);
  std::unique_ptr<FaultHarness> harness(new FaultHarness(options, history));
  ProcessClusterOptions cluster_options;
  cluster_options.binary = options.binary;
  cluster_options.base_dir = options.base_dir;
  cluster_options.nodes = options.nodes;
  cluster_options.token = "fault-harness";
  cluster_options.extra_flags = {
      absl::StrCat("--snapshot_interval=", options.snapshot_interval),
      absl::StrCat("--log_retain=", options.log_retain),
  };
  ASSIGN_OR_RETURN(harness->cluster_, ProcessCluster::Create(std::move(cluster_options)));
  std::map<int, SocketAddress> targets;
  for (int id : harness->Ids()) {
    ASSIGN_OR_RETURN(targets[id], ParseSocketAddress(harness->cluster_->peer_address(id)));
  }
  ASSIGN_OR_RETURN(harness->network_, FaultNetwork::Create(targets, harness->rng_.Next()));
  for (int from : harness->Ids()) {
    for (int to : harness->Ids()) {
      if (from != to) harness->cluster_->SetPeerRoute(from, to, harness->network_->ProxyAddress(from, to));
    }
  }
  RETURN_IF_ERROR(harness->cluster_->StartAll());
  ClientOptions client_options;
  client_options.endpoints = absl::StrSplit(harness->cluster_->endpoints(), ',');
  client_options.call_timeout_us = 500 * kMicrosPerMilli;  // a paused node must not stall us
  client_options.deadline_us = 30 * kMicrosPerSecond;
  client_options.seed = harness->rng_.Next() | 1;
  ASSIGN_OR_RETURN(harness->client_, Client::Create(std::move(client_options)));
  return harness;
}

FaultHarness::~FaultHarness() {
  // Paused nodes get SIGCONT first so that the cluster's SIGKILL is not
  // left pending on a stopped process (it is not: SIGKILL works on a
  // stopped process, but a resumed one reaps promptly either way).
  for (int id : paused_) {
    if (cluster_->running(id)) cluster_->Signal(id, SIGCONT);
  }
}

std::vector<int> FaultHarness::Ids() const {
  std::vector<int> ids;
  for (int id = 1; id <= options_.nodes; ++id) ids.push_back(id);
  return ids;
}

int FaultHarness::Leader() {
  int leader = 0;
  uint64_t term = 0;
  for (int id : Ids()) {
    if (killed_.count(id) != 0 || paused_.count(id) != 0) continue;
    absl::StatusOr<api::NodeStatus> status = client_->NodeStatusAt(static_cast<size_t>(id - 1));
    if (status.ok() && status->role() == api::NodeStatus::ROLE_LEADER && status->term() > term) {
      leader = id;
      term = status->term();
    }
  }
  return leader;
}

void FaultHarness::Kill(int id) {
  CHECK(killed_.count(id) == 0) << id;
  cluster_->Signal(id, SIGKILL);
  CHECK_OK(cluster_->Wait(id, std::chrono::seconds(10)).status());
  killed_.insert(id);
  paused_.erase(id);
  ++counts_.kills;
  history_->Fault("crash", {id});
}

absl::Status FaultHarness::Restart(int id) {
  CHECK(killed_.count(id) == 1) << id;
  RETURN_IF_ERROR(cluster_->Start(id));
  killed_.erase(id);
  ++counts_.restarts;
  history_->Fault("restart", {id});
  return absl::OkStatus();
}

void FaultHarness::Pause(int id) {
  CHECK(paused_.count(id) == 0 && killed_.count(id) == 0) << id;
  cluster_->Signal(id, SIGSTOP);
  paused_.insert(id);
  ++counts_.pauses;
  history_->Fault("pause", {id});
}

void FaultHarness::Resume(int id) {
  CHECK(paused_.count(id) == 1) << id;
  cluster_->Signal(id, SIGCONT);
  paused_.erase(id);
  history_->Fault("resume", {id});
}

void FaultHarness::SetReachable(const std::function<bool(int, int)>& can_send) {
  network_->SetReachable(can_send);
  ++counts_.partitions;
}

void FaultHarness::Partition(const std::vector<std::set<int>>& groups) {
  std::map<int, size_t> group_of;
  for (size_t g = 0; g < groups.size(); ++g) {
    for (int id : groups[g]) group_of[id] = g;
  }
  for (int id : Ids()) CHECK(group_of.count(id) == 1) << "node " << id << " in no group";
  SetReachable([&](int from, int to) { return group_of.at(from) == group_of.at(to); });
  for (size_t g = 0; g + 1 < groups.size(); ++g) {
    history_->Fault("partition", std::vector<int>(groups[g].begin(), groups[g].end()),
                    Others(Ids(), groups[g]));
  }
}

void FaultHarness::PartitionOneWay(int from, const std::set<int>& to) {
  SetReachable([&](int a, int b) { return !(a == from && to.count(b) != 0); });
  history_->Fault("partition_one_way", {from}, std::vector<int>(to.begin(), to.end()));
}

void FaultHarness::Ring() {
  const int n = options_.nodes;
  auto neighbours = [n](int a, int b) {
    const int d = (a - b + n) % n;
    return d == 1 || d == n - 1;
  };
  SetReachable([&](int a, int b) { return neighbours(a, b); });
  // A ring is non-transitive: one partition line per pair cut.
  for (int a = 1; a <= n; ++a) {
    for (int b = a + 1; b <= n; ++b) {
      if (!neighbours(a, b)) history_->Fault("partition", {a}, {b});
    }
  }
}

void FaultHarness::Bridge(const std::set<int>& left, const std::set<int>& right, int bridge) {
  SetReachable([&](int a, int b) {
    return !((left.count(a) != 0 && right.count(b) != 0) ||
             (right.count(a) != 0 && left.count(b) != 0));
  });
  history_->Fault("bridge", std::vector<int>(left.begin(), left.end()),
                  std::vector<int>(right.begin(), right.end()), bridge);
}

void FaultHarness::HealNetwork() {
  network_->HealAll();
  ++counts_.heals;
  history_->Fault("heal", {});
}

absl::Status FaultHarness::HealAll() {
  HealNetwork();
  for (int id : std::set<int>(paused_)) Resume(id);
  for (int id : std::set<int>(killed_)) RETURN_IF_ERROR(Restart(id));
  return absl::OkStatus();
}

absl::StatusOr<FaultCounts> FaultHarness::RunSchedule(Schedule schedule,
                                                      std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  const std::vector<int> ids = Ids();
  const int n = options_.nodes;
  while (std::chrono::steady_clock::now() < deadline) {
    Schedule kind = schedule;
    if (kind == Schedule::kMixed) kind = static_cast<Schedule>(rng_.Uniform(7));
    const bool soak = kind == Schedule::kKillAndPartition;
    if (soak) {
      kind = counts_.rounds % 2 == 0 ? Schedule::kKillLeader : Schedule::kMajorityMinority;
    }
    const uint64_t fault_min_ms = soak ? 500 : 1000, fault_max_ms = soak ? 1500 : 3000;
    if (kind == Schedule::kRing && n < 4) kind = Schedule::kMajorityMinority;  // 3-ring is whole
    std::vector<int> shuffled = ids;
    for (size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[rng_.Uniform(i)]);
    const int random_node = shuffled[0];
    switch (kind) {
      case Schedule::kKillLeader:
      case Schedule::kKillAny: {
        int victim = kind == Schedule::kKillLeader ? Leader() : random_node;
        if (victim == 0) victim = random_node;
        Kill(victim);
        SleepMs(rng_.Range(fault_min_ms, fault_max_ms));
        RETURN_IF_ERROR(Restart(victim));
        break;
      }
      case Schedule::kPause: {
        int victim = rng_.Chance(1, 2) ? Leader() : random_node;
        if (victim == 0) victim = random_node;
        Pause(victim);
        SleepMs(rng_.Range(fault_min_ms, fault_max_ms));
        Resume(victim);
        break;
      }
      case Schedule::kMajorityMinority: {
        const size_t minority = rng_.Range(1, static_cast<uint64_t>((n - 1) / 2));
        std::set<int> small(shuffled.begin(), shuffled.begin() + static_cast<long>(minority));
        std::set<int> large(shuffled.begin() + static_cast<long>(minority), shuffled.end());
        Partition({small, large});
        SleepMs(rng_.Range(fault_min_ms, fault_max_ms));
        HealNetwork();
        break;
      }
      case Schedule::kOneWay: {
        int from = rng_.Chance(1, 2) ? Leader() : random_node;
        if (from == 0) from = random_node;
        std::set<int> to(ids.begin(), ids.end());
        to.erase(from);
        PartitionOneWay(from, to);
        SleepMs(rng_.Range(fault_min_ms, fault_max_ms));
        HealNetwork();
        break;
      }
      case Schedule::kRing:
        Ring();
        SleepMs(rng_.Range(fault_min_ms, fault_max_ms));
        HealNetwork();
        break;
      case Schedule::kBridge:
      case Schedule::kMixed:
      case Schedule::kKillAndPartition: {  // (both resolved above)
        const int bridge = shuffled[0];
        std::set<int> left, right;
        for (size_t i = 1; i < shuffled.size(); ++i) (i % 2 == 1 ? left : right).insert(shuffled[i]);
        Bridge(left, right, bridge);
        SleepMs(rng_.Range(fault_min_ms, fault_max_ms));
        HealNetwork();
        break;
      }
    }
    ++counts_.rounds;
    SleepMs(soak ? rng_.Range(200, 600) : rng_.Range(500, 1500));
  }
  return counts_;
}

absl::Status FaultHarness::WaitConvergedAndCompareDigests(std::chrono::milliseconds timeout,
                                                          uint64_t* applied_index) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<api::NodeStatus> statuses;
    bool leader = false;
    for (int id : Ids()) {
      absl::StatusOr<api::NodeStatus> s =
          client_->NodeStatusAt(static_cast<size_t>(id - 1), /*with_digest=*/true);
      if (!s.ok()) break;
      leader = leader || s->role() == api::NodeStatus::ROLE_LEADER;
      statuses.push_back(*s);
    }
    if (statuses.size() == Ids().size()) {
      last.clear();
      bool same = true;
      for (const api::NodeStatus& s : statuses) {
        absl::StrAppend(&last, " n", s.node_id(), "@", s.applied_index());
        same = same && s.applied_index() == statuses[0].applied_index();
      }
      if (same && leader && statuses[0].applied_index() > 0) {
        *applied_index = statuses[0].applied_index();
        for (const api::NodeStatus& s : statuses) {
          if (s.state_digest() != statuses[0].state_digest()) {
            return absl::DataLossError(absl::StrCat("state digests differ at applied index ",
                                                    *applied_index, ": n", s.node_id(), " vs n",
                                                    statuses[0].node_id()));
          }
        }
        return absl::OkStatus();
      }
    }
    SleepMs(100);
  }
  return absl::DeadlineExceededError(absl::StrCat("nodes did not converge; last seen:", last));
}

}  // namespace blixard::net::testing
