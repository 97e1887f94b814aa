#include "perf/pattern.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "perf/rng.h"

namespace sluice::perf {

const std::array<uint64_t, Pattern::kWords>& Pattern::sector_template(uint64_t gen) {
  if (gen != template_gen_) {
    const uint64_t key = mix64(seed_ ^ mix64(gen + 0x9e3779b97f4a7c15ull));
    template_[0] = kMagic;
    template_[1] = 0;
    template_[2] = seed_;
    template_[3] = gen;
    for (size_t i = kHeaderWords; i < kWords; ++i) template_[i] = mix64(key + i);
    template_gen_ = gen;
  }
  return template_;
}

void Pattern::fill(void* buf, size_t len, uint64_t gen) {
  const auto& t = sector_template(gen);
  auto* out = static_cast<char*>(buf);
  for (size_t s = 0; s < len / kSector; ++s) std::memcpy(out + s * kSector, t.data(), kSector);
}

namespace {

std::string describe(const uint64_t* w, uint64_t offset, uint64_t seed, uint64_t gen) {
  if (std::all_of(w, w + Pattern::kWords, [](uint64_t x) { return x == 0; }))
    return "the sector reads as zeroes (never written?)";
  if (w[0] != Pattern::kMagic) return "the sector holds no verify pattern (never written, or overwritten)";
  if (w[2] != seed) return fmt::format("the sector holds the pattern of another run (seed {})", w[2]);
  if (w[1] != offset) return fmt::format("the sector holds data written for byte offset {} (misdirected)", w[1]);
  if (w[3] != gen) return fmt::format("the sector holds data of pass {}, not pass {} (a lost write?)", w[3], gen);
  return "the sector's header is right but its payload is corrupt";
}

}  // namespace

std::optional<Mismatch> Pattern::check(const void* buf, size_t len, uint64_t device_offset, uint64_t gen) {
  const auto* words = static_cast<const uint64_t*>(buf);
  for (size_t s = 0; s < len / kSector; ++s) {
    const uint64_t* w = words + s * kWords;
    const uint64_t offset = device_offset + s * kSector;
    uint64_t want_gen = gen;
    if (gen == kAnyGeneration) want_gen = (w[0] == kMagic && w[2] == seed_) ? w[3] : 0;
    const auto& t = sector_template(want_gen);
    if (w[0] == t[0] && w[1] == offset && w[2] == t[2] && w[3] == t[3] &&
        std::memcmp(w + kHeaderWords, t.data() + kHeaderWords, kSector - kHeaderWords * 8) == 0)
      continue;
    for (size_t i = 0; i < kWords; ++i) {
      uint64_t expect = i == 1 ? offset : t[i];
      if (w[i] == expect) continue;
      int byte = std::countr_zero(w[i] ^ expect) / 8;  // little-endian: lowest differing byte first
      Mismatch m;
      m.offset = offset + i * 8 + static_cast<uint64_t>(byte);
      m.expected = static_cast<uint8_t>(expect >> (byte * 8));
      m.actual = static_cast<uint8_t>(w[i] >> (byte * 8));
      m.detail = describe(w, offset, seed_, want_gen);
      return m;
    }
  }
  return std::nullopt;
}

}  // namespace sluice::perf
