// The data `sluice perf` writes, and how verify checks it.
//
// Every 512-byte sector of the device gets its own self-describing content:
//
//   word 0   magic "SLUICEPV"
//   word 1   the sector's device byte offset
//   word 2   the run's seed
//   word 3   the generation (verify pass) that wrote it
//   words 4..63  mix64(key(seed, generation) + i): the same for every sector of a pass
//
// So a misdirected write (right data, wrong place), a stale sector (an earlier pass or run),
// a torn write (some sectors old) and plain corruption each fail the check, and the message
// can say which. The pattern depends only on the seed, the generation and the device offset,
// not on the I/O size or the number of jobs, so one run can write it and another check it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace sluice::perf {

struct Mismatch {
  uint64_t offset = 0;  // device byte offset of the first byte that differs
  uint8_t expected = 0;
  uint8_t actual = 0;
  std::string detail;   // what the sector holds instead
};

class Pattern {
 public:
  static constexpr size_t kSector = 512;
  static constexpr size_t kWords = kSector / 8;
  static constexpr size_t kHeaderWords = 4;
  static constexpr uint64_t kMagic = 0x5650454349554c53ull;  // "SLUICEPV"
  // check(): accept whichever generation each sector names (data from an earlier run).
  static constexpr uint64_t kAnyGeneration = ~uint64_t{0};

  explicit Pattern(uint64_t seed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }

  // Fills `buf` (`len` a multiple of kSector) with generation `gen`'s sectors, offsets unset.
  void fill(void* buf, size_t len, uint64_t gen);
  // Writes each sector's device offset into a buffer fill() prepared: 8 stores per 4 KiB.
  static void stamp(void* buf, size_t len, uint64_t device_offset) {
    auto* words = static_cast<uint64_t*>(buf);
    for (size_t s = 0; s < len / kSector; ++s) words[s * kWords + 1] = device_offset + s * kSector;
  }
  // The first difference between `buf` and what generation `gen` wrote at `device_offset`.
  std::optional<Mismatch> check(const void* buf, size_t len, uint64_t device_offset, uint64_t gen);

 private:
  const std::array<uint64_t, kWords>& sector_template(uint64_t gen);

  uint64_t seed_;
  std::array<uint64_t, kWords> template_{};  // for template_gen_, offset word unset
  uint64_t template_gen_ = kAnyGeneration;
};

}  // namespace sluice::perf
