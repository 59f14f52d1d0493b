// Decodes arbitrary bytes as a Raft message: no crash, no unbounded
// allocation, and whatever decodes re-encodes to bytes that decode to the same
// message (encode(decode(encode(x))) == encode(x)). Issue 8 extends this
// target to every message type and the frame format.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base/check.h"
#include "core/proto/raft.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  blixard::raft::Message message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;
  std::string encoded;
  CHECK(message.SerializeToString(&encoded));
  blixard::raft::Message again;
  CHECK(again.ParseFromString(encoded)) << "re-encoded message does not parse";
  std::string reencoded;
  CHECK(again.SerializeToString(&reencoded));
  CHECK_EQ(encoded, reencoded) << "decode/encode is not stable";
  return 0;
}
