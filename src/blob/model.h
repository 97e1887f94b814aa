// The blobstore's metadata in memory, and the only code that changes it: apply(Record).
//
// Live operations build records and apply them; recovery decodes records from disk and
// applies them; a checkpoint is the records that rebuild the current state. Cluster
// ownership is derived from the extent maps here, so the allocator cannot disagree with them.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "blob/extent_map.h"
#include "blob/records.h"

namespace sluice::blob {

struct BlobMeta {
  uint64_t id = 0;
  std::atomic<uint32_t> flags{0};  // atomic: the data path checks read_only() without the lock
  uint64_t parent = 0;
  // The parent's metadata, for data-path readers that must not touch the blob table. A
  // parent outlives its clones' I/O: it cannot be removed while it has clones.
  std::atomic<BlobMeta*> parent_meta{nullptr};
  std::atomic<uint64_t> size{0};  // clusters; atomic because the data path reads it
  uint64_t allocated = 0;  // clusters this blob owns
  ExtentMap extents;
  std::map<std::string, std::string, std::less<>> xattrs[2];  // [0] user, [1] internal
  std::vector<uint64_t> clones;                                // blobs whose parent is this one

  bool thin() const { return flags & kFlagThin; }
  bool read_only() const { return flags.load(std::memory_order_acquire) & kFlagReadOnly; }
  bool is_snapshot() const { return flags & kFlagSnapshot; }
};

class Model {
 public:
  // Blob sizes may overcommit the device (thin provisioning) up to this factor.
  static constexpr uint64_t kMaxOvercommit = 1024;
  // Blob ids are 1..kMaxBlobId; next_id may be one past it (then no blob can be created).
  static constexpr uint64_t kMaxBlobId = (uint64_t{1} << 63) - 1;

  explicit Model(uint32_t num_clusters);

  // Validates and applies one record; on error nothing changed. The message says what was
  // inconsistent (recovery reports it as corruption).
  Status apply(const Record& r);

  BlobMeta* find(uint64_t id);
  const std::map<uint64_t, std::unique_ptr<BlobMeta>>& blobs() const { return blobs_; }
  uint64_t next_id() const { return next_id_; }
  uint64_t super_blob() const { return super_blob_; }

  uint32_t num_clusters() const { return static_cast<uint32_t>(owner_.size()); }
  uint64_t owner(uint32_t cluster) const { return owner_[cluster]; }
  bool dirty(uint32_t cluster) const { return dirty_[cluster]; }
  uint64_t free_clusters() const { return free_; }        // unowned (clean or dirty)
  uint64_t dirty_unowned() const { return dirty_unowned_; }
  // Clusters nobody owns that may hold old data.
  std::vector<uint32_t> dirty_unowned_list() const;
  // The first unowned, clean cluster at or after `from` (wrapping), or UINT32_MAX.
  uint32_t find_clean_free(uint32_t from) const;

  // Records that rebuild this state from empty, in an order apply() accepts.
  std::vector<Record> checkpoint_records() const;

 private:
  Status check_blob(const Record& r, BlobMeta** out);
  void release_cluster(uint32_t c);  // owned -> unowned + dirty
  Status set_extent_run(BlobMeta& b, uint64_t first, uint32_t count, uint32_t cluster_plus1);

  std::map<uint64_t, std::unique_ptr<BlobMeta>> blobs_;
  uint64_t next_id_ = 1;
  uint64_t super_blob_ = 0;
  std::vector<uint64_t> owner_;  // blob id per cluster, 0 = free
  std::vector<bool> dirty_;
  uint64_t free_;
  uint64_t dirty_unowned_ = 0;
};

}  // namespace sluice::blob
