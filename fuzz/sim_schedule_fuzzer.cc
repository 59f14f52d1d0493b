// Input bytes become a fault schedule and a workload seed for a short
// simulation of a 3-5 node cluster: every oracle applies (election safety,
// log matching, leader completeness, state machine safety, acknowledged
// writes, scheduler invariants, liveness after healing, linearizability).
// A failed run is a finding; its input replays it exactly.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/base/check.h"
#include "sim/fault_schedule.h"
#include "sim/simulation.h"

namespace {

using blixard::NodeId;
using blixard::sim::Fault;
using blixard::sim::FaultKind;

constexpr int64_t kDurationUs = 2'000'000;
constexpr size_t kFaultsMax = 16;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  blixard::sim::SimulationOptions options;
  options.seed = in.ConsumeIntegral<uint32_t>();
  options.nodes = in.ConsumeIntegralInRange<int>(3, 5);
  options.duration_us = kDurationUs;
  options.liveness_us = 20'000'000;
  options.workload = in.ConsumeBool() ? blixard::sim::WorkloadKind::kKv
                                      : blixard::sim::WorkloadKind::kMixed;
  blixard::sim::FaultSchedule schedule;
  const size_t faults = in.ConsumeIntegralInRange<size_t>(0, kFaultsMax);
  auto node = [&] {
    return NodeId(in.ConsumeIntegralInRange<uint64_t>(1, static_cast<uint64_t>(options.nodes)));
  };
  for (size_t i = 0; i < faults; ++i) {
    Fault fault;
    fault.at_us = in.ConsumeIntegralInRange<int64_t>(0, kDurationUs - 1);
    fault.kind = static_cast<FaultKind>(
        in.ConsumeIntegralInRange<int>(0, blixard::sim::kFaultKindCount - 1));
    const size_t count = in.ConsumeIntegralInRange<size_t>(1, 2);
    for (size_t k = 0; k < count; ++k) fault.nodes.push_back(node());
    std::sort(fault.nodes.begin(), fault.nodes.end());
    fault.nodes.erase(std::unique(fault.nodes.begin(), fault.nodes.end()), fault.nodes.end());
    for (uint64_t id = 1; id <= static_cast<uint64_t>(options.nodes); ++id) {
      if (std::find(fault.nodes.begin(), fault.nodes.end(), NodeId(id)) == fault.nodes.end() &&
          in.ConsumeBool()) {
        fault.others.push_back(NodeId(id));
      }
    }
    switch (fault.kind) {
      case FaultKind::kClockDrift:
        fault.value = in.ConsumeIntegralInRange<int64_t>(-500, 500);
        break;
      case FaultKind::kClockJump:
        fault.value = in.ConsumeIntegralInRange<int64_t>(0, 5'000'000);
        break;
      case FaultKind::kLoss:
      case FaultKind::kDuplicate:
      case FaultKind::kDiskWriteErrors:
      case FaultKind::kDiskReadErrors:
        fault.value = in.ConsumeIntegralInRange<int64_t>(0, 300'000);
        break;
      case FaultKind::kBridge:
        fault.value = static_cast<int64_t>(node().value());
        break;
      default:
        break;
    }
    schedule.faults.push_back(std::move(fault));
  }
  std::stable_sort(schedule.faults.begin(), schedule.faults.end(),
                   [](const Fault& a, const Fault& b) { return a.at_us < b.at_us; });
  if (!schedule.Validate().ok()) return 0;  // not a schedule the simulator accepts
  options.schedule = schedule;
  const blixard::sim::SimulationReport report = blixard::sim::RunSimulation(options);
  CHECK(report.passed) << report.failure << "\nschedule:\n" << schedule.ToText();
  return 0;
}
