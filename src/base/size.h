// Human sizes on command lines and in device specs: "4096", "4k", "64M", "1G", "2T".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sluice {

inline constexpr uint64_t kKiB = uint64_t{1} << 10;
inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;

// Binary units (k = 1024). Rejects empty strings, unknown suffixes and overflow.
Result<uint64_t> parse_size(std::string_view text);
// 1536 -> "1.5K", 67108864 -> "64M".
std::string format_size(uint64_t bytes);
// The machine's RAM (sysconf), or UINT64_MAX where it cannot be told.
uint64_t physical_memory_bytes();

}  // namespace sluice
