// A namespace's NGUID and UUID, derived from its bdev's name so that they stay the same
// across restarts of the target (hosts key multipath and udev names on them).
#include "base/crc32c.h"
#include "target/nvmf/nvmf_impl.h"

namespace sluice::nvmf {
namespace {

// 16 bytes from four CRC-32C streams over the name, each seeded differently.
std::array<uint8_t, 16> hash128(std::string_view name, uint32_t salt) {
  std::array<uint8_t, 16> out{};
  for (uint32_t i = 0; i < 4; ++i) {
    const uint32_t seed = crc32c(&salt, sizeof salt, i * 0x9e3779b9u);
    const uint32_t h = crc32c(name.data(), name.size(), seed);
    sp::put<uint32_t>(out.data(), i * 4, h);
  }
  return out;
}

}  // namespace

void derive_namespace_ids(Namespace& ns) {
  ns.nguid = hash128(ns.bdev_name, 0x4e475549);  // "NGUI"
  ns.uuid = hash128(ns.bdev_name, 0x55554944);   // "UUID"
  // RFC 9562 version 8 (vendor-defined), variant 10.
  ns.uuid[6] = static_cast<uint8_t>((ns.uuid[6] & 0x0f) | 0x80);
  ns.uuid[8] = static_cast<uint8_t>((ns.uuid[8] & 0x3f) | 0x80);
}

}  // namespace sluice::nvmf
