// Arbitrary command sequences applied to the cluster state machine.
//
// Each step either hands raw bytes to ApplyEntry, the Host's path for
// committed entries (adversarial: any bytes, any field, any value; bytes
// that do not decode must give a rejection, never a crash), or asks the
// command generator for a well-aimed command (so the fuzzer also reaches
// deep lifecycle states), chosen by the input. The retention bounds are
// small, so finished tasks are evicted by count and by age. After
// every command the state machine's invariants must hold (no over-commit,
// legal transitions, reservations that add up); every few commands a
// snapshot is restored into a second replica, which must have the same
// digest and still agree after both apply the rest.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base/check.h"
#include "core/base/rng.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/cluster_state_machine.h"
#include "core/sm/testing/command_generator.h"

namespace {

constexpr int kCommandsMax = 40;
constexpr size_t kRawCommandBytesMax = 512;

blixard::ClusterStateMachineOptions FuzzOptions() {
  blixard::ClusterStateMachineOptions options;
  options.finished_tasks_retained_max = 4;
  options.finished_task_retention_ms = 120'000;  // ~60 generator steps
  return options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using blixard::ClusterStateMachine;
  using blixard::Index;
  FuzzedDataProvider input(data, size);
  ClusterStateMachine sm(FuzzOptions());
  ClusterStateMachine replica(FuzzOptions());
  bool replica_live = false;
  blixard::sm::testing::CommandGenerator generator(
      blixard::Rng(input.ConsumeIntegral<uint64_t>()));
  uint64_t index = 0;
  for (int step = 0; step < kCommandsMax && input.remaining_bytes() > 0; ++step) {
    const uint8_t mode = input.ConsumeIntegral<uint8_t>();
    const std::string bytes = mode < 96
                                  ? input.ConsumeRandomLengthString(kRawCommandBytesMax)
                                  : generator.Next(sm).SerializeAsString();
    // Indexes advance by one or skip (no-ops and conf changes leave gaps).
    index += 1 + (mode & 3u);
    const blixard::cluster::Result result = sm.ApplyEntry(Index(index), bytes);
    sm.CheckInvariants();
    if (replica_live) {
      CHECK_EQ(replica.ApplyEntry(Index(index), bytes).SerializeAsString(),
               result.SerializeAsString())
          << "replicas answered entry " << index << " differently";
    } else if (mode % 16 == 0) {
      CHECK_OK(replica.Restore(sm.Snapshot()));
      CHECK_EQ(replica.finished_tasks(), sm.finished_tasks());
      replica.CheckInvariants();
      CHECK_EQ(replica.Digest(), sm.Digest()) << "restore changed the state";
      CHECK_EQ(replica.Snapshot(), sm.Snapshot());
      replica_live = true;
    }
  }
  if (replica_live) {
    replica.CheckInvariants();
    CHECK_EQ(replica.Digest(), sm.Digest()) << "replicas diverged by " << index;
  }
  return 0;
}
