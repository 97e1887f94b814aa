// Block status of an open blob (blob.h): a walk of the cluster map along the parent chain,
// the way a read resolves each cluster, behind the same freeze gate.
#include <algorithm>

#include "blob/blob.h"
#include "blob/store.h"

namespace sluice::blob {

std::vector<bdev::BlockRun> Blobstore::block_status(Blob& blob, uint64_t offset, uint64_t length, size_t max_runs) {
  std::vector<bdev::BlockRun> runs;
  if (length == 0 || max_runs == 0) return runs;
  // The freeze gate (store.h): counted first, then `frozen` checked. A freezer moving this
  // blob's clusters may have taken one out of the map before its new home is visible; "data"
  // is always a true answer.
  blob.in_flight.fetch_add(1);
  if (blob.frozen.load()) {
    blob.in_flight.fetch_sub(1);
    runs.push_back({length, false});
    return runs;
  }
  const uint64_t per_cluster = store_->io_units_per_cluster();
  const BlobMeta& meta = blob.meta();
  const uint64_t end = offset + length;
  for (uint64_t at = offset; at < end;) {
    const uint64_t cluster = at / per_cluster;
    const uint64_t units = std::min(end, (cluster + 1) * per_cluster) - at;
    const bool hole = store_->resolve_read(meta, cluster) == 0;
    if (!runs.empty() && runs.back().hole == hole) {
      runs.back().blocks += units;
    } else {
      if (runs.size() == max_runs) break;
      runs.push_back({units, hole});
    }
    at += units;
  }
  blob.in_flight.fetch_sub(1);
  return runs;
}

}  // namespace sluice::blob
