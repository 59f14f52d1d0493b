// A seeded, integer-only pseudo-random generator: xoshiro256** (Blackman and
// Vigna, 2018), seeded through splitmix64.
//
// Determinism is a feature: the same seed gives the same sequence on every
// platform and compiler, which `std::` distributions and absl::BitGen do not
// promise. Nothing here touches floating point. Not thread-safe; each user
// owns its generator.
//
//   Rng root(seed);
//   Rng network = root.Fork("network");   // independent sub-stream
//   uint64_t delay_us = network.Range(100, 2000);
//   if (network.Chance(1, 100)) { ... }  // 1% of the time
#ifndef BLIXARD_CORE_BASE_RNG_H_
#define BLIXARD_CORE_BASE_RNG_H_

#include <array>
#include <cstdint>

#include "absl/numeric/int128.h"
#include "absl/strings/string_view.h"
#include "core/base/check.h"

namespace blixard {

class Rng {
 public:
  explicit Rng(uint64_t seed);

  // The next 64 raw bits.
  uint64_t Next();

  // Uniform in [0, n), without modulo bias (Lemire's multiply-and-reject).
  // REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n);

  // Uniform in [lo, hi] inclusive. REQUIRES: lo <= hi.
  uint64_t Range(uint64_t lo, uint64_t hi);

  // True with probability numerator / denominator.
  // REQUIRES: denominator > 0 and numerator <= denominator.
  bool Chance(uint64_t numerator, uint64_t denominator);

  // An independent generator for a named sub-stream. The child's seed depends
  // only on this generator's seed and the name (not on how many numbers were
  // drawn), so adding draws to one stream never shifts another.
  Rng Fork(absl::string_view stream) const;
  Rng Fork(uint64_t stream) const;

  uint64_t seed() const { return seed_; }

  // How many raw 64-bit words this generator has produced since it was
  // seeded: its position in the stream. A recorded position lets a replay
  // resume a stream exactly where a run left it (sim: recorded client
  // operations), without printing the 256-bit state.
  uint64_t draws() const { return draws_; }
  // Advances the stream by `n` raw words, as if Next() were called n times.
  void Discard(uint64_t n);

 private:
  static constexpr uint64_t Rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
  }

  uint64_t seed_;
  std::array<uint64_t, 4> state_;
  uint64_t draws_ = 0;
};

// One step of splitmix64: a good 64-bit mixing function, used for seeding and
// for stable hashing of small keys.
inline uint64_t SplitMix64(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The draws are inline: the simulator makes several per event.

inline uint64_t Rng::Next() {
  ++draws_;
  const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = Rotl(state_[3], 45);
  return result;
}

inline uint64_t Rng::Uniform(uint64_t n) {
  CHECK_GT(n, 0u) << "Uniform(0) has no value to return";
  // Lemire, "Fast Random Integer Generation in an Interval" (2019).
  absl::uint128 product = absl::uint128(Next()) * n;
  uint64_t low = absl::Uint128Low64(product);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      product = absl::uint128(Next()) * n;
      low = absl::Uint128Low64(product);
    }
  }
  return absl::Uint128High64(product);
}

inline bool Rng::Chance(uint64_t numerator, uint64_t denominator) {
  CHECK_GT(denominator, 0u);
  CHECK_LE(numerator, denominator);
  return Uniform(denominator) < numerator;
}

// A stable 64-bit hash of bytes: XXH3-64 with seed 0 (xxHash >= 0.8, whose
// XXH3 output is frozen). Stable across platforms and releases, unlike
// absl::Hash; for digests, checksums and trace hashes, not for hash tables.
// XXH3 reads 8-32 bytes per step where byte-at-a-time FNV-1a took ~4 cycles
// per byte: state digests hash whole serialized states.
uint64_t StableHash64(absl::string_view bytes);

}  // namespace blixard

#endif  // BLIXARD_CORE_BASE_RNG_H_
