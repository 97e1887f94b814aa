// The device a SluiceFS call names, as format and mount both take it (internal to src/fs).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace sluice::fs {

// A registered bdev's name, or a spec to create one from (then owned by the caller, who
// unregisters it): {bdev name, owned}. A plain path means uring:PATH.
Result<std::pair<std::string, bool>> resolve_device(std::string_view device);

// Claims the device's host file against other processes and other mounts (bdev.h,
// Bdev::lock_backing): a writer must be alone, or readers could see a torn namespace and two
// writers would corrupt it. Taken before the blobstore reads anything. `device` names it in
// errors; `name` is the bdev.
Status lock_device(std::string_view device, const std::string& name, bool write);
void unlock_device(const std::string& name);

}  // namespace sluice::fs
