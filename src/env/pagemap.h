// Physical addresses of our own pages, from /proc/self/pagemap. The kernel shows page frame
// numbers only to CAP_SYS_ADMIN; to anyone else every PFN reads as 0.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.h"

namespace sluice::env::detail {

inline constexpr int kPageShift = 12;

// Physical addresses of the `pages` 4 KiB pages starting at the page holding `va`, into
// `out` (one pread for the lot). Fails if a page is not resident or PFNs are hidden.
Status physical_pages(uintptr_t va, size_t pages, uint64_t* out);
// The physical address of one byte.
Result<uint64_t> physical_address(uintptr_t va);

}  // namespace sluice::env::detail
