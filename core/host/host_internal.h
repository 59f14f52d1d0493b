// Small helpers shared by the Host's source files (host.cc, host_ready.cc,
// host_clients.cc). Not part of the Host's API.
#ifndef BLIXARD_CORE_HOST_HOST_INTERNAL_H_
#define BLIXARD_CORE_HOST_HOST_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "core/base/types.h"
#include "google/protobuf/repeated_field.h"
#include "core/proto/api.pb.h"

namespace blixard::host::internal {

inline api::ClientResponse Response(api::ClientResponse::Status status,
                                    absl::string_view error) {
  api::ClientResponse response;
  response.set_status(status);
  response.set_error(std::string(error));
  return response;
}

// Whether a configuration's id list (voters, learners, ...) names `id`.
inline bool Contains(const google::protobuf::RepeatedField<uint64_t>& ids, NodeId id) {
  for (uint64_t member : ids) {
    if (member == id.value()) return true;
  }
  return false;
}

// Read ids travel as the ReadIndex context: 8 bytes, little-endian.
inline std::string EncodeReadId(uint64_t id) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(id >> (8 * i));
  return out;
}

// The id in a ReadIndex context, or nullopt for a context that is not one
// of ours.
inline std::optional<uint64_t> DecodeReadId(const std::string& context) {
  if (context.size() != 8) return std::nullopt;
  uint64_t id = 0;
  for (int i = 7; i >= 0; --i) {
    id = (id << 8) | static_cast<uint8_t>(context[static_cast<size_t>(i)]);
  }
  return id;
}

}  // namespace blixard::host::internal

#endif  // BLIXARD_CORE_HOST_HOST_INTERNAL_H_
