// Fast pseudo-randomness for I/O offsets and data patterns, far cheaper than <random>'s
// engines and distributions (which also cost a division per bounded number).
#pragma once

#include <cstdint>

namespace sluice::perf {

__extension__ using uint128 = unsigned __int128;

// The SplitMix64 finalizer: a bijective 64-bit mix, also used to derive pattern words.
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// wyrand (Wang Yi's wyhash PRNG): one 64x64->128 multiply per number; passes BigCrush and
// PractRand.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    state_ += 0xa0761d6478bd642full;
    const uint128 t = static_cast<uint128>(state_) * (state_ ^ 0xe7037ed1a0b428dbull);
    return static_cast<uint64_t>(t >> 64) ^ static_cast<uint64_t>(t);
  }
  // Uniform in [0, n) by multiply-and-shift (Lemire): no division, bias below n / 2^64.
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<uint128>(next()) * n) >> 64); }

 private:
  uint64_t state_;
};

}  // namespace sluice::perf
