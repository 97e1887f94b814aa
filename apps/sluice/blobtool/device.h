// The device a `sluice blob` / `sluice lvol` command works on: a spec ("uring:/tmp/img",
// "malloc:64M", "lvol:uring:/img/vol") or a plain path, which means uring:PATH.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "bdev/bdev.h"

namespace sluice::blobtool {

// A bdev made from a spec for the life of a command, registered under the spec itself so
// that messages from the layers below name what the user typed. Unregistered on destruction.
class Device {
 public:
  static Result<std::unique_ptr<Device>> create(std::string_view arg);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const std::string& spec() const { return spec_; }
  const std::string& bdev_name() const { return name_; }
  bdev::Geometry geometry() const;

 private:
  Device() = default;
  std::string spec_;
  std::string name_;
};

}  // namespace sluice::blobtool
