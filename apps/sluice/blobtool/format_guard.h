// What every command that formats a device checks first (`sluice blob init`, `sluice lvol
// create-store`, `sluice mkfs`): a sane cluster size, and no blobstore it would destroy.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "blobtool/device.h"

namespace sluice::blobtool {

// "--cluster-size" text to bytes: a multiple of 4096 in [4K, 1G]; invalid_argument otherwise.
Result<uint32_t> parse_cluster_size(const std::string& text);

// Errc::exists, naming what is there, if `dev` holds a blobstore (valid, damaged or newer):
// formatting would destroy it unless the user says --force.
Status refuse_existing_store(const Device& dev);

}  // namespace sluice::blobtool
