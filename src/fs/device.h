// The device a SluiceFS call names, as format and mount both take it (internal to src/fs).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace sluice::fs {

// A registered bdev's name, or a spec to create one from (then owned by the caller, who
// unregisters it): {bdev name, owned}. What users type becomes a spec as for every command
// (bdev::device_spec: a plain path means uring:PATH).
Result<std::pair<std::string, bool>> resolve_device(std::string_view device);

}  // namespace sluice::fs
