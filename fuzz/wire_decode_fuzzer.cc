// Decodes arbitrary bytes as every message type that crosses a trust
// boundary (peer messages, client requests, disk records, snapshots): no
// crash, no unbounded allocation, and whatever decodes re-encodes stably:
// encode(decode(encode(x))) == encode(x). The first byte picks the type.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base/check.h"
#include "core/proto/cluster.pb.h"
#include "core/proto/api.pb.h"
#include "core/proto/host.pb.h"
#include "core/proto/raft.pb.h"

namespace {

template <typename M>
void RoundTrip(const uint8_t* data, size_t size) {
  M message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return;
  std::string encoded;
  CHECK(message.SerializeToString(&encoded));
  M again;
  CHECK(again.ParseFromString(encoded)) << "re-encoded message does not parse";
  std::string reencoded;
  CHECK(again.SerializeToString(&reencoded));
  CHECK_EQ(encoded, reencoded) << "decode/encode is not stable";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace blixard;  // NOLINT: message type list below
  if (size == 0) return 0;
  const uint8_t kind = data[0];
  ++data;
  --size;
  switch (kind % 12) {
    case 0: RoundTrip<raft::Message>(data, size); break;
    case 1: RoundTrip<raft::Entry>(data, size); break;
    case 2: RoundTrip<raft::HardState>(data, size); break;
    case 3: RoundTrip<raft::ConfChange>(data, size); break;
    case 4: RoundTrip<raft::Snapshot>(data, size); break;
    case 5: RoundTrip<cluster::Command>(data, size); break;
    case 6: RoundTrip<cluster::Query>(data, size); break;
    case 7: RoundTrip<cluster::StateSnapshot>(data, size); break;
    case 8: RoundTrip<host::HostMessage>(data, size); break;
    case 9: RoundTrip<api::ClientRequest>(data, size); break;
    case 10: RoundTrip<api::ClientResponse>(data, size); break;
    default: RoundTrip<cluster::Result>(data, size); break;
  }
  return 0;
}
