#include "fs/device.h"

#include <fmt/format.h>

#include "bdev/bdev.h"
#include "bdev/device_spec.h"

namespace sluice::fs {

Result<std::pair<std::string, bool>> resolve_device(std::string_view device) {
  if (device.empty()) return Status(Errc::invalid_argument, "no device given");
  if (bdev::find(device)) return std::make_pair(std::string(device), false);
  const std::string spec = bdev::device_spec(device);  // a plain path means uring:PATH
  auto name = bdev::create(spec, spec);
  if (!name.ok()) return Status(name.status().code(), fmt::format("device {}: {}", device, name.status().message()));
  return std::make_pair(*name, true);
}

}  // namespace sluice::fs
