#include "core/raft/config.h"

#include "absl/strings/str_cat.h"

namespace blixard::raft {

absl::Status ValidateConfig(const Config& config) {
  if (config.id.is_none()) return absl::InvalidArgumentError("config: id must not be 0");
  if (config.id.value() > kNodeIdMax) {
    return absl::InvalidArgumentError(absl::StrCat("config: id ", config.id.value(),
                                                   " exceeds kNodeIdMax (", kNodeIdMax, ")"));
  }
  if (config.heartbeat_tick <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: heartbeat_tick must be > 0, got ", config.heartbeat_tick));
  }
  if (config.election_tick <= config.heartbeat_tick) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: election_tick (", config.election_tick,
        ") must be greater than heartbeat_tick (", config.heartbeat_tick, ")"));
  }
  if (config.election_tick > kElectionTickMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: election_tick ", config.election_tick, " exceeds ", kElectionTickMax));
  }
  if (config.max_size_per_msg == 0) {
    return absl::InvalidArgumentError("config: max_size_per_msg must be > 0");
  }
  if (config.max_inflight_msgs == 0 || config.max_inflight_msgs > kInflightMsgsMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: max_inflight_msgs must be in [1, ", kInflightMsgsMax, "], got ",
        config.max_inflight_msgs));
  }
  if (config.max_inflight_bytes != 0 && config.max_inflight_bytes < config.max_size_per_msg) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: max_inflight_bytes (", config.max_inflight_bytes,
        ") must be >= max_size_per_msg (", config.max_size_per_msg, ")"));
  }
  if (config.applied.value() > kIndexMax) {
    return absl::InvalidArgumentError(absl::StrCat("config: applied ", config.applied.value(),
                                                   " exceeds kIndexMax (", kIndexMax, ")"));
  }
  if (config.read_only_option == ReadOnlyOption::kLeaseBased && !config.check_quorum) {
    return absl::InvalidArgumentError(
        "config: read_only_option lease-based requires check_quorum");
  }
  return absl::OkStatus();
}

absl::Status Config::Validate() const {
  if (absl::Status s = ValidateConfig(*this); !s.ok()) return s;
  if (storage == nullptr) return absl::InvalidArgumentError("config: storage is null");
  if (logger == nullptr) return absl::InvalidArgumentError("config: logger is null");
  return absl::OkStatus();
}

}  // namespace blixard::raft
