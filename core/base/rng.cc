#include "core/base/rng.h"

#include <xxhash.h>

#include "core/base/check.h"

namespace blixard {
namespace {

// FNV-1a then splitmix: the hash of stream names (Fork). Kept apart from
// StableHash64 so that every seed's sub-streams, and so every recorded seed,
// fault script and regression run, stay what they were when StableHash64
// moved to XXH3.
uint64_t StreamNameHash(absl::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : name) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  return SplitMix64(hash);
}

}  // namespace

uint64_t StableHash64(absl::string_view bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

Rng::Rng(uint64_t seed) : seed_(seed) {
  uint64_t s = seed;
  for (uint64_t& word : state_) word = SplitMix64(s);
  // xoshiro's all-zero state is a fixed point; splitmix64 cannot produce four
  // zero words in a row, but say so.
  CHECK(state_[0] != 0 || state_[1] != 0 || state_[2] != 0 || state_[3] != 0);
}

void Rng::Discard(uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) Next();
}

uint64_t Rng::Range(uint64_t lo, uint64_t hi) {
  CHECK_LE(lo, hi);
  if (lo == 0 && hi == UINT64_MAX) return Next();
  return lo + Uniform(hi - lo + 1);
}

Rng Rng::Fork(absl::string_view stream) const {
  return Fork(StreamNameHash(stream));
}

Rng Rng::Fork(uint64_t stream) const {
  uint64_t s = seed_ ^ Rotl(stream, 32) ^ 0x6a09e667f3bcc909ULL;
  const uint64_t a = SplitMix64(s);
  return Rng(a ^ SplitMix64(s));
}

}  // namespace blixard
