// Links the nvme: bdev scheme into the conformance suite built for the guest lane (a static
// library's self-registering object is not pulled in unless something refers to it).
#include "nvme/nvme.h"

namespace {
[[maybe_unused]] const bool kNvmeScheme = sluice::nvme::register_bdev_scheme().ok();
}  // namespace
