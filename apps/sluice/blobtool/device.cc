#include "blobtool/device.h"

#include "bdev/device_spec.h"

namespace sluice::blobtool {

Result<std::unique_ptr<Device>> Device::create(std::string_view arg) {
  if (arg.empty()) return Status(Errc::invalid_argument, "no device given (--device SPEC or a path)");
  std::unique_ptr<Device> d(new Device());
  d->spec_ = bdev::device_spec(arg);
  auto name = bdev::create(d->spec_, d->spec_);
  if (!name.ok()) return name.status();
  d->name_ = name.value();
  return d;
}

Device::~Device() {
  if (!name_.empty()) (void)bdev::unregister(name_);
}

bdev::Geometry Device::geometry() const {
  auto b = bdev::find(name_);
  return b ? b->geometry() : bdev::Geometry{};
}

}  // namespace sluice::blobtool
