#include "base/size.h"

#include <unistd.h>

#include <cctype>

#include <fmt/format.h>

namespace sluice {

Result<uint64_t> parse_size(std::string_view text) {
  auto bad = [&] { return Status(Errc::invalid_argument, fmt::format("bad size '{}' (want e.g. 4096, 4k, 64M, 1G)", text)); };
  if (text.empty()) return bad();
  uint64_t value = 0;
  size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) return bad();
    value = value * 10 + digit;
  }
  if (i == 0) return bad();
  std::string_view suffix = text.substr(i);
  // Accept "M", "MB" and "MiB" alike: all binary.
  if (suffix.size() >= 2 && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.remove_suffix(1);
  if (suffix.size() == 2 && suffix.back() == 'i') suffix.remove_suffix(1);
  int shift = 0;
  if (!suffix.empty()) {
    if (suffix.size() != 1) return bad();
    switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      case 'B': shift = 0; break;
      default: return bad();
    }
  }
  if (shift && value > (UINT64_MAX >> shift)) return bad();
  return value << shift;
}

std::string format_size(uint64_t bytes) {
  static const char* units[] = {"", "K", "M", "G", "T", "P"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) { v /= 1024; ++u; }
  if (u == 0) return fmt::format("{}", bytes);
  if (v == static_cast<double>(static_cast<uint64_t>(v))) return fmt::format("{}{}", static_cast<uint64_t>(v), units[u]);
  return fmt::format("{:.1f}{}", v, units[u]);
}

uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : UINT64_MAX;
}

}  // namespace sluice
