// LvolBdev: a volume as a bdev. Each channel's queue holds that thread's blob channel and the
// open blob, and turns every request into one blobstore request (internal to src/lvol).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "bdev/backend.h"
#include "blob/blob.h"

namespace sluice::lvol {

// The geometry of a volume of `size_clusters` clusters in a store with the given cluster size
// and io unit, on a base device with geometry `base`. Snapshots are read-only.
bdev::Geometry volume_geometry(const bdev::Geometry& base, uint32_t cluster_size, uint32_t io_unit,
                               uint64_t size_clusters, bool read_only);

class LvolBdev : public bdev::Bdev {
 public:
  LvolBdev(std::string name, std::string spec, const bdev::Geometry& g, std::shared_ptr<blob::Blobstore> bs,
           blob::BlobId id);

  std::string spec() const override { return spec_; }
  Result<std::unique_ptr<bdev::BackendQueue>> create_queue() override;

  blob::BlobId blob_id() const { return id_; }
  // Only while nobody else has the device open (the store holds an exclusive claim): channels
  // copy the geometry when they are made.
  void set_num_blocks(uint64_t num_blocks);

 private:
  std::string spec_;
  std::shared_ptr<blob::Blobstore> bs_;  // outlives the store's unload while handles are open
  blob::BlobId id_;
};

}  // namespace sluice::lvol
