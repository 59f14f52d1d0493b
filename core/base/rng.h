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

#include "absl/strings/string_view.h"

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
  uint64_t seed_;
  std::array<uint64_t, 4> state_;
  uint64_t draws_ = 0;
};

// One step of splitmix64: a good 64-bit mixing function, used for seeding and
// for stable hashing of small keys.
uint64_t SplitMix64(uint64_t& state);

// A stable 64-bit hash of bytes: XXH3-64 with seed 0 (xxHash >= 0.8, whose
// XXH3 output is frozen). Stable across platforms and releases, unlike
// absl::Hash; for digests, checksums and trace hashes, not for hash tables.
// XXH3 reads 8-32 bytes per step where byte-at-a-time FNV-1a took ~4 cycles
// per byte: state digests hash whole serialized states.
uint64_t StableHash64(absl::string_view bytes);

}  // namespace blixard

#endif  // BLIXARD_CORE_BASE_RNG_H_
