// Rebuilding a lost super block (both copies damaged) from the checkpoint that survives, for
// `sluice blob repair` (docs/format/blobstore.md, "Layout"). On a bdev no store has open.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "blob/format.h"

namespace sluice::blob {

// True when page 2 (where slot 0 of every store starts) holds a checkpoint's first page.
bool checkpoint_survives(std::string_view bdev_name);
// The layout is recomputed from the device size and the cluster size (as init chose it);
// `cluster_size` 0 tries every power of two and refuses when more than one fits. The super
// block points at the newest whole checkpoint; journal pages cannot be placed relative to
// it without a super block, so the journal head goes past all of them (nothing replayed).
// Fails not_found when no checkpoint survives.
Result<SuperBlock> plan_super_rebuild(std::string_view bdev_name, uint32_t cluster_size);
// Writes `sb` to both copies and FLUSHes.
Status write_rebuilt_super(std::string_view bdev_name, const SuperBlock& sb);

}  // namespace sluice::blob
