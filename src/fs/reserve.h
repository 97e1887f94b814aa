// The free-space reserve: clusters that ordinary file growth may not take, so that a full
// file system can still be mounted read-write, let RocksDB open (a new LOG, MANIFEST,
// OPTIONS, CURRENT and WAL, a flush of the recovered WAL) and compact, and so shrink.
// Nothing on disk records it: it follows from the device's geometry at every mount
// (docs/format/sluicefs.md, "The free-space reserve").
#pragma once

#include <cstdint>

namespace sluice::fs {

// 1/32 of the device, at least 8 MiB and at most 256 MiB, but never more than a quarter of
// the device: enough for the handful of files a database opens, small on large devices.
inline constexpr uint64_t kReserveShare = 32;
inline constexpr uint64_t kMinReserve = 8ull << 20;
inline constexpr uint64_t kMaxReserve = 256ull << 20;

// The reserve of a store of `total_clusters` clusters of `cluster_size` bytes, in clusters
// (whole clusters, rounded up).
uint64_t default_reserve_clusters(uint64_t total_clusters, uint32_t cluster_size);

// The reserve asked for in bytes (MountOptions::reserve_bytes), in clusters: rounded up,
// and at most a quarter of the device so that a reserve can never take the space it guards.
uint64_t reserve_clusters_for(uint64_t bytes, uint64_t total_clusters, uint32_t cluster_size);

}  // namespace sluice::fs
