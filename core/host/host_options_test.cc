// HostOptions::Validate refuses bad settings, Raft's included, before the
// Host writes anything (issue 13, point 8).
#include "gtest/gtest.h"
#include "core/host/host.h"

namespace blixard::host {
namespace {

HostOptions Valid() {
  HostOptions options;
  options.id = NodeId(1);
  options.initial_voters = {NodeId(1)};
  return options;
}

void ExpectRefused(const HostOptions& options, absl::string_view mentions) {
  const absl::Status status = options.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(mentions), absl::string_view::npos)
      << "'" << status.message() << "' should name " << mentions;
}

TEST(HostOptionsTest, DefaultsAreValid) { EXPECT_TRUE(Valid().Validate().ok()); }

TEST(HostOptionsTest, RaftSettingsAreValidatedToo) {
  HostOptions options = Valid();
  options.election_ticks = 1;
  options.heartbeat_ticks = 1;
  ExpectRefused(options, "election_tick");
  options = Valid();
  options.max_size_per_msg = 0;
  ExpectRefused(options, "max_size_per_msg");
  options = Valid();
  options.max_inflight_msgs = 0;
  ExpectRefused(options, "max_inflight_msgs");
}

TEST(HostOptionsTest, HostSettingsAreNamed) {
  HostOptions options = Valid();
  options.cluster_id = 0;
  ExpectRefused(options, "cluster_id");
  options = Valid();
  options.initial_voters = {NodeId(1), NodeId(1)};
  ExpectRefused(options, "initial_voters");
  options = Valid();
  options.worker_ttl_us = options.agent_heartbeat_us;
  ExpectRefused(options, "worker_ttl_us");
}

TEST(HostOptionsTest, TheWorkerFenceMustEndBeforeALostWorkersTasksMove) {
  HostOptions options = Valid();
  options.agent_fence_us = options.agent_heartbeat_us;
  ExpectRefused(options, "agent_fence_us");
  // The fence (plus four election timeouts) against TTL + offline grace.
  options = Valid();
  options.state_machine.offline_grace_ms = 1'000;
  ExpectRefused(options, "offline_grace_ms");
  options.agent_fence_us = 1'000'000;
  options.worker_ttl_us = 10'000'000;
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
  // A worker trusts a deposed leader to step down: check-quorum.
  options = Valid();
  options.worker.emplace();
  options.check_quorum = false;
  ExpectRefused(options, "check_quorum");
}

}  // namespace
}  // namespace blixard::host
