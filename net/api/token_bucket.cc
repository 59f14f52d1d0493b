#include "net/api/token_bucket.h"

#include <algorithm>

#include "core/base/check.h"

namespace blixard::net {
namespace {

// One token's worth of bucket units: a token is due every 1/rate seconds,
// i.e. every kMicrosPerSecond units of 1/rate microseconds.
constexpr uint64_t kUnitsPerToken = static_cast<uint64_t>(kMicrosPerSecond);

}  // namespace

TokenBucket::TokenBucket(uint64_t rate_per_second, MonoMicros start, int64_t lag_us)
    : rate_(rate_per_second),
      start_(start),
      lag_units_(static_cast<uint64_t>(lag_us) * rate_per_second) {
  CHECK_GE(rate_per_second, 1u);
  CHECK_LE(rate_per_second, kRatePerSecondMax);
  CHECK_GE(lag_us, 0);
  CHECK_LE(lag_us, kLagUsMax);
  CHECK_GE(start, 0);
}

uint64_t TokenBucket::Units(MonoMicros now) const {
  CHECK_GE(now, start_);
  return static_cast<uint64_t>(now - start_) * rate_;
}

bool TokenBucket::Due(MonoMicros now) const { return due_units_ <= Units(now); }

void TokenBucket::Take(MonoMicros now) {
  const uint64_t now_units = Units(now);
  CHECK_LE(due_units_, now_units) << "Take before the token is due";
  // A token more than lag_us overdue is taken as if it fell due lag_us
  // ago: the bucket holds no more than that.
  const uint64_t floor_units = now_units > lag_units_ ? now_units - lag_units_ : 0;
  due_units_ = std::max(due_units_, floor_units) + kUnitsPerToken;
  ++taken_;
}

MonoMicros TokenBucket::NextDueMicros() const {
  return start_ + static_cast<MonoMicros>((due_units_ + rate_ - 1) / rate_);
}

void TokenBucket::CheckInvariants() const {
  CHECK_GE(rate_, 1u);
  CHECK_LE(rate_, kRatePerSecondMax);
  // Every take moves the schedule by at least one token.
  CHECK_GE(due_units_, taken_ * kUnitsPerToken);
  CHECK_EQ(taken_ == 0, due_units_ == 0);
}

}  // namespace blixard::net
