#include "net/api/token_bucket.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace blixard::net {
namespace {

// Takes every token due at `now`; returns how many.
uint64_t TakeAllDue(TokenBucket& bucket, MonoMicros now) {
  uint64_t n = 0;
  while (bucket.Due(now)) {
    bucket.Take(now);
    ++n;
  }
  bucket.CheckInvariants();
  return n;
}

TEST(TokenBucketTest, StartsWithOneToken) {
  TokenBucket bucket(100, 5'000, 0);
  EXPECT_TRUE(bucket.Due(5'000));
  bucket.Take(5'000);
  EXPECT_FALSE(bucket.Due(5'000));
  EXPECT_EQ(bucket.NextDueMicros(), 15'000);  // 1/100 s later
}

TEST(TokenBucketTest, OnTimeGeneratorGetsExactlyTheRate) {
  // Woken exactly when each token falls due, for one second: rate + 1
  // tokens (the one at start and one per interval up to and including 1 s).
  // (A lag of 1 ms, as the engine uses, absorbs the rounding of due times
  // up to whole microseconds; with none, each would push the schedule.)
  TokenBucket bucket(150, 0, 1'000);
  uint64_t taken = 0;
  for (int i = 0; i < 1000 && bucket.NextDueMicros() <= kMicrosPerSecond; ++i) {
    taken += TakeAllDue(bucket, bucket.NextDueMicros());
  }
  EXPECT_EQ(taken, 151u);
}

TEST(TokenBucketTest, FractionalIntervalsDoNotDrift) {
  // 15,000/s is a token every 66.67 us: after 3 s exactly 45,000 intervals.
  TokenBucket bucket(15'000, 0, kMicrosPerSecond);
  uint64_t taken = 0;
  for (MonoMicros now = 0; now <= 3 * kMicrosPerSecond; now += 500'000) {
    taken += TakeAllDue(bucket, now);
  }
  EXPECT_EQ(taken, 45'001u);
  EXPECT_EQ(bucket.NextDueMicros(), 3 * kMicrosPerSecond + 67);  // 66.67 rounded up
}

TEST(TokenBucketTest, MillisecondWakeupsKeepTheRateWithinTheLag) {
  // Woken once a millisecond (the loop's resolution), a 1 ms lag loses
  // nothing: 15 tokens a wake-up at 15,000/s.
  TokenBucket bucket(15'000, 0, 1'000);
  uint64_t taken = 0;
  for (MonoMicros now = 0; now <= kMicrosPerSecond; now += 1'000) {
    taken += TakeAllDue(bucket, now);
  }
  EXPECT_EQ(taken, 15'001u);
}

TEST(TokenBucketTest, WithoutLagALateWakeupGetsOneToken) {
  // etcd's limiter (burst 1): 10 ms late, one token at once, the next a
  // full interval after now; the missed ones are gone.
  TokenBucket bucket(1'000, 0, 0);
  bucket.Take(0);
  EXPECT_EQ(TakeAllDue(bucket, 10'000), 1u);
  EXPECT_EQ(bucket.NextDueMicros(), 11'000);
}

TEST(TokenBucketTest, LagBoundsTheCatchUp) {
  // Blocked for 100 ms (no room for requests) with a 2 ms lag at 1,000/s:
  // the tokens of the last 2 ms are still there (3 with the one due now),
  // not the 100 of the whole wait.
  TokenBucket bucket(1'000, 0, 2'000);
  bucket.Take(0);
  EXPECT_EQ(TakeAllDue(bucket, 100'000), 3u);
  EXPECT_FALSE(bucket.Due(100'000));
  EXPECT_EQ(bucket.NextDueMicros(), 101'000);
}

TEST(TokenBucketTest, NeverAheadOfTheSchedule) {
  // Whatever the wake-ups, tokens taken by time t <= 1 + rate * t.
  TokenBucket bucket(8'000, 0, 1'000);
  uint64_t taken = 0;
  for (MonoMicros now = 0; now <= 2 * kMicrosPerSecond; now += 777) {
    taken += TakeAllDue(bucket, now);
    EXPECT_LE(taken, 1 + static_cast<uint64_t>(now) * 8'000 / 1'000'000);
  }
  EXPECT_EQ(taken, bucket.taken());
}

}  // namespace
}  // namespace blixard::net
