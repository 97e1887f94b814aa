// Store and volume names: short, printable, and safe inside a bdev name ("<store>/<volume>")
// and a device spec.
#include <fmt/format.h>

#include "lvol/lvol.h"

namespace sluice::lvol {

Status check_name(std::string_view name, std::string_view what) {
  if (name.empty()) return Status(Errc::invalid_argument, fmt::format("{} is empty", what));
  if (name.size() > kMaxNameLength)
    return Status(Errc::invalid_argument,
                  fmt::format("{} '{}' is {} characters; the limit is {}", what, name, name.size(), kMaxNameLength));
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (ok) continue;
    if (c >= 0x20 && c < 0x7f)
      return Status(Errc::invalid_argument,
                    fmt::format("{} '{}' contains '{}'; use only letters, digits, '.', '_' and '-'", what, name, c));
    return Status(Errc::invalid_argument,
                  fmt::format("{} contains the byte 0x{:02x}; use only letters, digits, '.', '_' and '-'", what,
                              static_cast<unsigned char>(c)));
  }
  return Status::Ok();
}

}  // namespace sluice::lvol
