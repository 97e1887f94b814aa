#include "fs/reserve.h"

#include <algorithm>

namespace sluice::fs {

uint64_t reserve_clusters_for(uint64_t bytes, uint64_t total_clusters, uint32_t cluster_size) {
  if (cluster_size == 0) return 0;
  const uint64_t clusters = (bytes + cluster_size - 1) / cluster_size;
  return std::min(clusters, total_clusters / 4);
}

uint64_t default_reserve_clusters(uint64_t total_clusters, uint32_t cluster_size) {
  const uint64_t share = total_clusters / kReserveShare * cluster_size;
  return reserve_clusters_for(std::clamp(share, kMinReserve, kMaxReserve), total_clusters, cluster_size);
}

}  // namespace sluice::fs
