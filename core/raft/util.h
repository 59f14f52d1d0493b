// Small helpers over the Raft schema shared by every file in core/raft:
// message classification (local, response), entry payload sizes, and
// deterministic one-line descriptions of messages and entries for logs and
// golden scenario output.
#ifndef BLIXARD_CORE_RAFT_UTIL_H_
#define BLIXARD_CORE_RAFT_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"

namespace blixard::raft {

// Messages a node generates for itself; never valid from the network.
bool IsLocalMessage(MessageType type);
// Replies to a request; a reply from a node the leader does not track is
// ignored.
bool IsResponseMessage(MessageType type);
// The response type that answers a vote or pre-vote request.
MessageType VoteResponseType(MessageType request);

absl::string_view MessageTypeName(MessageType type);

// Bytes of payload an entry carries; what the byte limits count.
inline uint64_t PayloadSize(const Entry& entry) {
  return static_cast<uint64_t>(entry.data().size());
}

// "t3/i9" style ids keep scenario output short and readable.
std::string DescribeEntry(const Entry& entry);
std::string DescribeMessage(const Message& message);
std::string DescribeHardState(const HardState& hard_state);
std::string DescribeConfState(const ConfState& conf_state);
std::string DescribeConfChange(const ConfChange& change);

inline bool IsEmptyHardState(const HardState& hs) {
  return hs.term() == 0 && hs.vote() == 0 && hs.commit() == 0;
}
inline bool IsEmptySnapshot(const Snapshot& snapshot) {
  return snapshot.metadata().index() == 0;
}

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_UTIL_H_
