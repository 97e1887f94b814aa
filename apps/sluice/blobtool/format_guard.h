// What every command that formats a device shares (`sluice blob init`, `sluice lvol
// create-store`, `sluice mkfs`): a sane cluster size, and the library's refusal to format a
// device that is not blank (blob/probe.h), told in the CLI's terms.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace sluice::blobtool {

// "--cluster-size" text to bytes: a multiple of 4096 in [4K, 1G]; invalid_argument otherwise.
Result<uint32_t> parse_cluster_size(const std::string& text);

// A failed format's status, with how to override a refusal (Errc::exists from a device that
// is not blank) added to its message.
Status explain_refusal(const Status& st);

}  // namespace sluice::blobtool
