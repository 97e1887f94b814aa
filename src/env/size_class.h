// Size classes of the DMA pool: powers of two from 4 KiB to 2 MiB. A buffer of class c is
// aligned to its own size, so one class serves both a size and an alignment request.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace sluice::env::detail {

inline constexpr int kMinClassShift = 12;                                  // 4 KiB
inline constexpr int kSlabShift = 21;                                      // 2 MiB
inline constexpr size_t kSlabBytes = size_t{1} << kSlabShift;
inline constexpr int kClasses = kSlabShift - kMinClassShift + 1;           // 4K .. 2M

inline constexpr size_t class_bytes(int cls) { return size_t{1} << (kMinClassShift + cls); }

// The smallest class holding `bytes` (1 .. 2 MiB).
inline constexpr int class_of(size_t bytes) {
  if (bytes <= class_bytes(0)) return 0;
  return static_cast<int>(std::bit_width(bytes - 1)) - kMinClassShift;
}

// Per-thread cache depth of each class: about 2 MiB cached per class at most, never fewer
// than 2 buffers so a free/alloc pair never reaches the shared pool.
inline constexpr uint32_t kMaxCached = 64;
inline constexpr uint32_t cache_capacity(int cls) {
  size_t n = (size_t{2} << 20) / class_bytes(cls);
  return n > kMaxCached ? kMaxCached : (n < 2 ? 2 : static_cast<uint32_t>(n));
}
// Buffers moved between a thread cache and the shared pool at a time.
inline constexpr uint32_t cache_batch(int cls) { return cache_capacity(cls) / 2; }

inline constexpr size_t round_up(size_t v, size_t to) { return (v + to - 1) & ~(to - 1); }

static_assert(class_of(1) == 0 && class_of(4096) == 0 && class_of(4097) == 1);
static_assert(class_of(kSlabBytes) == kClasses - 1);
static_assert(cache_capacity(0) == 64 && cache_capacity(kClasses - 1) == 2);

}  // namespace sluice::env::detail
