#include "fs/device.h"

#include <fmt/format.h>

#include "bdev/bdev.h"

namespace sluice::fs {

Result<std::pair<std::string, bool>> resolve_device(std::string_view device) {
  if (device.empty()) return Status(Errc::invalid_argument, "no device given");
  if (bdev::find(device)) return std::make_pair(std::string(device), false);
  std::string spec(device);
  if (device.find(':') == std::string_view::npos) spec = "uring:" + spec;  // a plain path
  auto name = bdev::create(spec, spec);
  if (!name.ok()) return Status(name.status().code(), fmt::format("device {}: {}", device, name.status().message()));
  return std::make_pair(*name, true);
}

Status lock_device(std::string_view device, const std::string& name, bool write) {
  auto b = bdev::find(name);
  if (!b) return Status::Ok();
  Status st = b->lock_backing(write);
  if (!st.ok()) return Status(st.code(), fmt::format("{}: {}", device, st.message()));
  return st;
}

void unlock_device(const std::string& name) {
  if (auto b = bdev::find(name)) b->unlock_backing();
}

}  // namespace sluice::fs
