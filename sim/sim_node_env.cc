#include "sim/sim_node_env.h"

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::sim {
namespace {

int64_t DrawOffset(const World* world, NodeId node, int64_t max_us) {
  Rng rng = world->NodeStream(node, "clock");
  return static_cast<int64_t>(rng.Range(0, static_cast<uint64_t>(max_us)));
}

int64_t DrawDrift(const World* world, NodeId node, int64_t max_ppm) {
  Rng rng = world->NodeStream(node, "clock_drift");
  return static_cast<int64_t>(
             rng.Range(0, static_cast<uint64_t>(2 * max_ppm))) -
         max_ppm;
}

}  // namespace

absl::Status SimNodeEnvOptions::Validate() const {
  if (clock_offset_max_us < 0 || clock_offset_max_us > kClockUptimeMaxUs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SimNodeEnvOptions: clock_offset_max_us not in [0, ", kClockUptimeMaxUs, "]"));
  }
  if (drift_ppm_max < 0 || drift_ppm_max > SimClock::kDriftPpmMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("SimNodeEnvOptions: drift_ppm_max not in [0, ",
                     SimClock::kDriftPpmMax, "]"));
  }
  return executor.Validate();
}

SimNodeEnv::SimNodeEnv(World* world, SimNetwork* network, NodeId node,
                       const SimNodeEnvOptions& options)
    : world_(world),
      node_(node),
      reboot_rng_(world->NodeStream(node, "reboot")),
      clock_(world, DrawOffset(world, node, options.clock_offset_max_us),
             DrawDrift(world, node, options.drift_ppm_max)),
      timers_(world, &clock_, node),
      transport_(network->Attach(node)),
      executor_(world, &clock_, node, options.executor) {
  CHECK_OK(options.Validate());
  // Registered after the executor's listener, so its draw of the crash
  // kind is known here.
  world_->AddLifecycleListener([this](NodeId changed, LifecycleChange change) {
    if (changed != node_ || change != LifecycleChange::kCrash) return;
    const int64_t uptime_us = static_cast<int64_t>(reboot_rng_.Range(
        static_cast<uint64_t>(kBootUptimeMinUs), static_cast<uint64_t>(kBootUptimeMaxUs)));
    if (!executor_.last_crash_was_machine()) return;
    ++reboots_;
    clock_.Reboot(uptime_us);
  });
}

Env SimNodeEnv::MakeEnv(LogStore* log_store) {
  CHECK(log_store != nullptr);
  Env env;
  env.clock = &clock_;
  env.timers = &timers_;
  env.transport = transport_;
  env.log_store = log_store;
  env.executor = &executor_;
  CHECK(env.complete());
  return env;
}

Rng SimNodeEnv::RaftRng(uint64_t incarnation) const {
  return world_->NodeStream(node_, "raft").Fork(incarnation);
}

void SimNodeEnv::CheckInvariants() const {
  clock_.CheckInvariants();
  timers_.CheckInvariants();
  executor_.CheckInvariants();
  CHECK_EQ(transport_->self(), node_);
}

}  // namespace blixard::sim
