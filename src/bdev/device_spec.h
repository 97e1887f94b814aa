// What users type for a device, turned into a spec for bdev::create: the one rule every
// command, the lvol: scheme, SluiceFS and (through it) the plugin share.
#pragma once

#include <string>
#include <string_view>

namespace sluice::bdev {

// A path means uring:PATH: an existing file or directory (even one with a ':' in its name),
// or anything that does not look like "scheme:target" (no ':', or a '/' before the first
// one). Everything else is returned unchanged, as a spec.
std::string device_spec(std::string_view arg);

}  // namespace sluice::bdev
