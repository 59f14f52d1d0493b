// Arbitrary command sequences applied to the cluster state machine.
//
// Each step either decodes raw bytes as a Command (adversarial: any field,
// any value) or asks the command generator for a well-aimed one (so the
// fuzzer also reaches deep lifecycle states), chosen by the input. After
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using blixard::ClusterStateMachine;
  using blixard::Index;
  FuzzedDataProvider input(data, size);
  ClusterStateMachine sm;
  ClusterStateMachine replica;
  bool replica_live = false;
  blixard::sm::testing::CommandGenerator generator(
      blixard::Rng(input.ConsumeIntegral<uint64_t>()));
  uint64_t index = 0;
  for (int step = 0; step < kCommandsMax && input.remaining_bytes() > 0; ++step) {
    blixard::cluster::Command command;
    const uint8_t mode = input.ConsumeIntegral<uint8_t>();
    if (mode < 96) {
      const std::string bytes = input.ConsumeRandomLengthString(kRawCommandBytesMax);
      if (!command.ParseFromString(bytes)) continue;
    } else {
      command = generator.Next(sm);
    }
    // Indexes advance by one or skip (no-ops and conf changes leave gaps).
    index += 1 + (mode & 3u);
    sm.Apply(Index(index), command);
    sm.CheckInvariants();
    if (replica_live) {
      replica.Apply(Index(index), command);
    } else if (mode % 16 == 0) {
      CHECK_OK(replica.Restore(sm.Snapshot()));
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
