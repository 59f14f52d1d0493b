#include "sim/sim_clock.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/numeric/int128.h"
#include "core/base/check.h"

namespace blixard::sim {

SimClock::SimClock(const World* world, int64_t start_offset_us,
                   int64_t drift_ppm)
    : world_(world),
      base_world_us_(world->now_us()),
      base_node_us_(start_offset_us),
      drift_ppm_(drift_ppm),
      last_returned_us_(start_offset_us),
      drift_ppm_abs_max_(drift_ppm < 0 ? -drift_ppm : drift_ppm) {
  CHECK(world != nullptr);
  CHECK_GE(start_offset_us, 0);
  CHECK_LE(drift_ppm, kDriftPpmMax);
  CHECK_GE(drift_ppm, -kDriftPpmMax);
}

MonoMicros SimClock::NodeTimeAt(SimMicros world_us) const {
  CHECK_GE(world_us, base_world_us_);
  const absl::int128 elapsed = world_us - base_world_us_;
  const absl::int128 scaled = elapsed * (kPpmScale + drift_ppm_) / kPpmScale;
  const absl::int128 result = base_node_us_ + scaled;
  CHECK(result <= std::numeric_limits<int64_t>::max());
  return static_cast<MonoMicros>(result);
}

SimMicros SimClock::WorldTimeFor(MonoMicros node_us) const {
  const SimMicros now = world_->now_us();
  if (NodeTimeAt(now) >= node_us) return now;
  // Invert the line, rounding up, then correct the integer rounding.
  const absl::int128 delta = absl::int128(node_us) - base_node_us_;
  const absl::int128 rate = kPpmScale + drift_ppm_;
  absl::int128 world = base_world_us_ + (delta * kPpmScale + rate - 1) / rate;
  CHECK(world <= std::numeric_limits<int64_t>::max());
  SimMicros at = static_cast<SimMicros>(world);
  if (at < now) at = now;
  while (NodeTimeAt(at) < node_us) ++at;
  while (at > now && NodeTimeAt(at - 1) >= node_us) --at;
  return at;
}

MonoMicros SimClock::NowMicros() {
  const MonoMicros now = Peek();
  CHECK_GE(now, last_returned_us_) << "monotonic clock went backwards";
  last_returned_us_ = now;
  return now;
}

void SimClock::SetDrift(int64_t drift_ppm) {
  CHECK_LE(drift_ppm, kDriftPpmMax);
  CHECK_GE(drift_ppm, -kDriftPpmMax);
  base_node_us_ = Peek();
  base_world_us_ = world_->now_us();
  drift_ppm_ = drift_ppm;
  drift_ppm_abs_max_ = std::max(drift_ppm_abs_max_, drift_ppm < 0 ? -drift_ppm : drift_ppm);
  Changed();
}

void SimClock::SetChangeListener(std::function<void()> listener) {
  CHECK(!change_listener_);
  change_listener_ = std::move(listener);
}

void SimClock::JumpForward(int64_t jump_us) {
  CHECK_GE(jump_us, 0);
  base_node_us_ = Peek() + jump_us;
  base_world_us_ = world_->now_us();
  jumped_us_ += jump_us;
  Changed();
}

void SimClock::Reboot(int64_t uptime_us) {
  CHECK_GE(uptime_us, 0);
  base_node_us_ = uptime_us;
  base_world_us_ = world_->now_us();
  last_returned_us_ = uptime_us;
  Changed();
}

void SimClock::CheckInvariants() const {
  CHECK_LE(drift_ppm_, kDriftPpmMax);
  CHECK_GE(drift_ppm_, -kDriftPpmMax);
  CHECK_LE(base_world_us_, world_->now_us());
  CHECK_GE(Peek(), last_returned_us_);
  CHECK_GE(drift_ppm_abs_max_, drift_ppm_ < 0 ? -drift_ppm_ : drift_ppm_);
  CHECK_LE(drift_ppm_abs_max_, kDriftPpmMax);
  CHECK_GE(jumped_us_, 0);
}

}  // namespace blixard::sim
