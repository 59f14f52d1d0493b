// A 3-5 node Raft cluster where the input chooses everything the network
// and the machines do: which message to deliver, drop or duplicate next,
// when to tick, persist, crash, restart, propose, partition, compact or
// change the membership. Raft's safety properties (election safety, log
// matching, leader completeness, state machine safety) are checked after
// every step; a violation is a finding.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/check.h"
#include "core/base/logger.h"
#include "core/raft/testing/cluster.h"

namespace {

constexpr int kStepsMax = 60;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  blixard::NullLogger logger;
  blixard::raft::testing::ClusterOptions options;
  options.pre_vote = in.ConsumeBool();
  options.check_quorum = in.ConsumeBool();
  options.seed = in.ConsumeIntegral<uint8_t>();
  blixard::raft::testing::Cluster cluster(options, &logger);
  const size_t nodes = in.ConsumeIntegralInRange<size_t>(3, 5);
  cluster.AddVoters(nodes);
  blixard::raft::testing::SafetyChecker checker;
  auto pick = [&] { return in.ConsumeIntegralInRange<uint64_t>(1, nodes); };
  for (int step = 0; step < kStepsMax && in.remaining_bytes() > 0; ++step) {
    auto& flight = cluster.in_flight();
    switch (in.ConsumeIntegralInRange<int>(0, 15)) {
      case 0:
      case 1:
      case 2:
      case 3:
        if (!flight.empty()) {
          (void)cluster.DeliverAt(in.ConsumeIntegralInRange<size_t>(0, flight.size() - 1));
        }
        break;
      case 4:
        if (!flight.empty()) cluster.Drop(in.ConsumeIntegralInRange<size_t>(0, flight.size() - 1));
        break;
      case 5:
        if (!flight.empty()) {
          // A duplicate: the network delivers the same message twice.
          const auto copy = flight[in.ConsumeIntegralInRange<size_t>(0, flight.size() - 1)];
          cluster.Send(copy);
        }
        break;
      case 6:
      case 7: {
        const uint64_t id = pick();
        if (!cluster.node(id).down) cluster.Tick(id);
        break;
      }
      case 8: {
        const uint64_t id = pick();
        if (!cluster.node(id).down) cluster.TakeReady(id);
        break;
      }
      case 9: {
        const uint64_t id = pick();
        if (!cluster.node(id).down) cluster.PersistOne(id);
        break;
      }
      case 10: {
        const uint64_t id = pick();
        if (!cluster.node(id).down) cluster.raw(id).Propose(in.ConsumeBytesAsString(6));
        break;
      }
      case 11: {
        const uint64_t id = pick();
        if (cluster.node(id).down) {
          cluster.Restart(id);
        } else {
          cluster.Crash(id);
        }
        break;
      }
      case 12:
        if (in.ConsumeBool()) {
          cluster.Isolate(pick());
        } else {
          cluster.Heal();
        }
        break;
      case 13: {
        const uint64_t id = pick();
        blixard::raft::testing::TestNode& n = cluster.node(id);
        if (!n.down && n.applied_index() > n.base_index) {
          (void)cluster.Compact(id, n.applied_index());
        }
        break;
      }
      case 14: {
        const uint64_t id = pick();
        if (!cluster.node(id).down) {
          const uint64_t target = pick();
          const char* kinds[] = {"v", "l", "r"};
          const std::string spec =
              std::string(in.PickValueInArray(kinds)) + std::to_string(target);
          cluster.raw(id).ProposeConfChange(blixard::raft::testing::Cluster::MakeConfChange(
              spec, in.ConsumeBool() ? blixard::raft::CONF_CHANGE_TRANSITION_AUTO
                                     : blixard::raft::CONF_CHANGE_TRANSITION_JOINT_IMPLICIT));
        }
        break;
      }
      default: {
        const uint64_t id = pick();
        if (!cluster.node(id).down) cluster.raw(id).Campaign();
        break;
      }
    }
    const std::string violation = checker.Check(cluster);
    CHECK(violation.empty()) << violation;
  }
  return 0;
}
