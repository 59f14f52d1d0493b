// TokenBucket: the pacing of `blixard check perf`'s request generator, which
// mirrors `etcdctl check perf`: etcd's generator waits on
// golang.org/x/time/rate's Limiter(rate, burst 1) before each request, so
// requests go out at most `rate` per second, evenly spaced, and a generator
// that falls behind (no room for the request, or a late wake-up) gets its
// next token at once but never a pile of saved ones.
//
// Pure and clock-free: the caller passes the loop clock's reading. One
// difference with etcd's, on purpose: a Go timer wakes the generator within
// microseconds of a token falling due, our EventLoop only within a
// millisecond (epoll_wait's resolution). With a bucket of one token, every
// late wake-up would lose the tokens of that millisecond, capping the rate
// near 1,000/s whatever was asked. So the bucket lets the schedule lag
// `lag_us` behind the clock before it drops tokens: a generator woken up to
// lag_us late still issues every token due since, as etcd's, woken on time,
// would have. lag_us = 0 is exactly etcd's limiter.
//
// Times are microseconds; token k falls due at start + k / rate (exact: the
// bucket counts in units of 1/rate microseconds, no rounding drift).
//
//   TokenBucket bucket(/*rate_per_second=*/15000, now, /*lag_us=*/1000);
//   while (bucket.Due(now) && RoomForARequest()) { Send(); bucket.Take(now); }
//   ArmTimer(bucket.NextDueMicros());
//
// Thread: not thread-safe (one generator, one thread).
#ifndef BLIXARD_NET_API_TOKEN_BUCKET_H_
#define BLIXARD_NET_API_TOKEN_BUCKET_H_

#include <cstdint>

#include "core/env.h"

namespace blixard::net {

class TokenBucket {
 public:
  // Keeps rate * (elapsed microseconds) far below 2^64 for runs of days.
  static constexpr uint64_t kRatePerSecondMax = 10'000'000;
  static constexpr int64_t kLagUsMax = kMicrosPerSecond;

  // The first token is due at `start` (a limiter starts full: one token).
  // REQUIRES: 1 <= rate_per_second <= kRatePerSecondMax;
  // 0 <= lag_us <= kLagUsMax; start >= 0.
  TokenBucket(uint64_t rate_per_second, MonoMicros start, int64_t lag_us);

  // Whether a token is due at `now`. REQUIRES: now >= every earlier now.
  bool Due(MonoMicros now) const;

  // Takes the due token: the next falls due one interval after this one,
  // or, when this one is more than lag_us overdue, one interval after
  // now - lag_us (the tokens of a longer lag are dropped, as a full
  // bucket drops them). REQUIRES: Due(now).
  void Take(MonoMicros now);

  // When the next token falls due (rounded up to a whole microsecond),
  // assuming the generator is ready for it: a timer armed for this time
  // finds Due() true.
  MonoMicros NextDueMicros() const;

  uint64_t taken() const { return taken_; }
  uint64_t rate_per_second() const { return rate_; }

  void CheckInvariants() const;

 private:
  // `now` in bucket units since start_: (now - start_) * rate_.
  uint64_t Units(MonoMicros now) const;

  const uint64_t rate_;
  const MonoMicros start_;
  const uint64_t lag_units_;
  // When the next token falls due, in units of 1/rate_ microseconds since
  // start_ (one token = kMicrosPerSecond units).
  uint64_t due_units_ = 0;
  uint64_t taken_ = 0;
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_TOKEN_BUCKET_H_
