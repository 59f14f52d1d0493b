#include "core/raft/config.h"

#include "absl/strings/str_cat.h"

namespace blixard::raft {

absl::Status Config::Validate() const {
  if (id.is_none()) return absl::InvalidArgumentError("config: id must not be 0");
  if (heartbeat_tick <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: heartbeat_tick must be > 0, got ", heartbeat_tick));
  }
  if (election_tick <= heartbeat_tick) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: election_tick (", election_tick,
        ") must be greater than heartbeat_tick (", heartbeat_tick, ")"));
  }
  if (election_tick > kElectionTickMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: election_tick ", election_tick, " exceeds ", kElectionTickMax));
  }
  if (storage == nullptr) return absl::InvalidArgumentError("config: storage is null");
  if (logger == nullptr) return absl::InvalidArgumentError("config: logger is null");
  if (max_inflight_msgs == 0 || max_inflight_msgs > kInflightMsgsMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: max_inflight_msgs must be in [1, ", kInflightMsgsMax, "], got ",
        max_inflight_msgs));
  }
  if (max_inflight_bytes != 0 && max_inflight_bytes < max_size_per_msg) {
    return absl::InvalidArgumentError(
        "config: max_inflight_bytes must be >= max_size_per_msg");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return absl::InvalidArgumentError(
        "config: lease-based reads require check_quorum");
  }
  return absl::OkStatus();
}

}  // namespace blixard::raft
