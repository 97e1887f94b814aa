// The blobstore: crash-safe blobs (numbered, resizable arrays of clusters with attributes)
// on any bdev. The persistent allocator under SluiceFS and logical volumes.
//
// Metadata operations are synchronous, may be called from any thread, and are serialized
// inside the store; each is applied in memory at once and becomes durable at the next
// sync_md() (group commit: one journal write and one FLUSH for everything pending).
// Data I/O is asynchronous and per thread, like the bdev API: get a channel, submit, poll.
// docs/format/blobstore.md describes the on-disk format and where FLUSH goes.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "bdev/bdev.h"

namespace sluice::blob {

using BlobId = uint64_t;

struct InitOptions {
  uint32_t cluster_size = 1u << 20;  // bytes, a multiple of 4096
  uint64_t checkpoint_bytes = 0;     // per slot; 0: 32 bytes per cluster + 1 MiB
  uint64_t journal_bytes = 0;        // 0: 1/64 of the device in [256 KiB, 16 MiB]
  bool clear_data = true;            // zero the data area (unmap when it reads back zeroes)
  // Format even a device that is not blank (blob/probe.h), destroying what it holds. Without
  // it, init refuses such a device with Errc::exists, naming what is there.
  bool force = false;
};

struct LoadOptions {
  bool read_only = false;  // inspect only: no recovery writes, no metadata changes
};

struct CreateOptions {
  uint64_t size_clusters = 0;
  bool thin = false;  // allocate clusters on first write instead of at creation
  std::map<std::string, std::string> xattrs;
};

struct BlobInfo {
  BlobId id = 0;
  uint64_t size_clusters = 0;
  uint64_t allocated_clusters = 0;
  bool thin = false;
  bool read_only = false;
  bool snapshot = false;
  BlobId parent = 0;         // the snapshot a clone reads unallocated clusters from
  std::vector<BlobId> clones;  // for snapshots
  std::map<std::string, std::string> xattrs;           // user attributes
  std::map<std::string, std::string> internal_xattrs;  // the store's users' private ones
};

struct StoreInfo {
  uint32_t cluster_size = 0;
  uint32_t io_unit = 0;  // bytes per data I/O unit (the bdev block size)
  uint64_t total_clusters = 0;
  uint64_t free_clusters = 0;
  uint64_t blobs = 0;
  uint64_t journal_pages_used = 0;
  uint64_t journal_pages = 0;
  bool recovered = false;  // the last load replayed a journal (the store was not unloaded)
  std::string uuid;        // the store's identity, as text (xxxxxxxx-xxxx-...)
  // Where things are and what the metadata holds, for inspection tools (sluice blob).
  uint64_t data_offset = 0;      // bytes: where device cluster 0 starts
  uint32_t checkpoint_pages = 0;  // the size of a checkpoint slot, in pages
  uint64_t dirty_clusters = 0;   // reserved or freed, not owned: zeroed before reuse
  uint64_t next_id = 0;          // the id the next created blob takes
};

// A run of a blob's clusters: consecutive blob clusters on consecutive device clusters, or
// an unallocated gap (reads from the parent, or zeroes).
struct ClusterRun {
  uint64_t first = 0;  // blob cluster
  uint64_t count = 0;
  int64_t device_cluster = -1;  // of `first`; -1: unallocated
};

class Blob;
class BlobChannel;
class Store;

class Blobstore {
 public:
  // Formats `bdev_name` (claimed exclusively while the store is open). Only a blank device
  // unless opts.force (blob/probe.h).
  static Result<std::unique_ptr<Blobstore>> init(std::string_view bdev_name, const InitOptions& opts = {});
  // Opens an existing store, recovering from a crash if it was not unloaded.
  static Result<std::unique_ptr<Blobstore>> load(std::string_view bdev_name, const LoadOptions& opts = {});
  ~Blobstore();  // unloads if unload() was not called (errors are logged)

  // Writes a checkpoint, marks the store clean and releases the bdev. Blobs must be closed.
  // Channels other threads still hold (idle) become theirs: each puts its own back (at the
  // latest when its thread exits) while this object lives.
  Status unload();
  // Releases the bdev without writing anything, as if the process had died here: the next
  // load recovers from the journal. For crash simulation and for giving up on a failed device.
  void abandon();

  Result<BlobId> create(const CreateOptions& opts);
  Status resize(BlobId id, uint64_t size_clusters);
  Status remove(BlobId id);  // refused while the blob is open or has clones (unless one: see remove())
  Status set_xattr(BlobId id, std::string_view name, std::string_view value, bool internal = false);
  Result<std::string> get_xattr(BlobId id, std::string_view name, bool internal = false);
  Status remove_xattr(BlobId id, std::string_view name, bool internal = false);
  Status set_read_only(BlobId id);

  // A read-only snapshot of `id`; `id` becomes a clone of it (its clusters move to the
  // snapshot, writes then copy on write).
  Result<BlobId> snapshot(BlobId id, const std::map<std::string, std::string>& xattrs = {});
  // A writable copy-on-write clone of a snapshot.
  Result<BlobId> clone(BlobId snapshot_id, const std::map<std::string, std::string>& xattrs = {});
  // Copies every cluster the clone reads from its ancestors; it no longer has a parent.
  Status inflate(BlobId id);
  // Copies the clusters the clone reads from its parent; its parent becomes the parent's parent.
  Status decouple(BlobId id);

  Status set_super_blob(BlobId id);
  Result<BlobId> super_blob();

  std::vector<BlobId> list();
  Result<BlobInfo> info(BlobId id);
  // The blob's clusters up to its size, as runs in blob order.
  Result<std::vector<ClusterRun>> cluster_runs(BlobId id);
  StoreInfo store_info();
  // Consistency of the state in memory (fsck): every cluster owned once, the counts,
  // parents and sizes agree. One line per problem; empty when consistent.
  std::vector<std::string> check();
  // The pages a checkpoint of the current state takes; more than store_info().checkpoint_pages
  // and no checkpoint can be written (unload and recovery fail with no_space).
  uint64_t checkpoint_pages_needed();

  // Makes every change made so far durable.
  Status sync_md();
  // Writes every change made so far to the journal without a FLUSH, so that it survives the
  // death of this process (the device completes the write) but not a power cut; the next
  // sync_md() makes it durable. One journal write, no FLUSH.
  Status push_md();

  // ---- Data I/O -------------------------------------------------------------------------
  Result<std::shared_ptr<Blob>> open(BlobId id);
  Status close(std::shared_ptr<Blob> blob);

  Result<BlobChannel*> get_channel();  // the calling thread's
  Status put_channel(BlobChannel* ch);
  int poll(BlobChannel* ch);

  // Offsets and lengths in io units (store_info().io_unit bytes). The buffer rules are the
  // bdev's. Writes to thin or cloned clusters allocate (and copy) on first touch.
  Status read(BlobChannel* ch, Blob& blob, void* buf, uint64_t offset, uint64_t length, bdev::IoCallback cb,
              void* arg);
  Status write(BlobChannel* ch, Blob& blob, const void* buf, uint64_t offset, uint64_t length, bdev::IoCallback cb,
               void* arg);
  Status readv(BlobChannel* ch, Blob& blob, const iovec* iov, int iovcnt, uint64_t offset, uint64_t length,
               bdev::IoCallback cb, void* arg);
  Status writev(BlobChannel* ch, Blob& blob, const iovec* iov, int iovcnt, uint64_t offset, uint64_t length,
                bdev::IoCallback cb, void* arg);
  // Deallocates whole thin clusters in the range and zeroes the rest.
  Status unmap(BlobChannel* ch, Blob& blob, uint64_t offset, uint64_t length, bdev::IoCallback cb, void* arg);
  Status write_zeroes(BlobChannel* ch, Blob& blob, uint64_t offset, uint64_t length, bdev::IoCallback cb, void* arg);
  // Data durability: FLUSH of the device (completes when every completed write is durable).
  Status flush(BlobChannel* ch, bdev::IoCallback cb, void* arg);
  // How io units [offset, +length) of an open blob read (bdev block_status): holes are the
  // clusters with nothing allocated, here or in any ancestor. In memory, without the store's
  // lock, so a data-path thread may ask; while a snapshot or inflate moves the blob's clusters
  // the answer is "data" (never a hole that is not one). The range must be inside the blob.
  std::vector<bdev::BlockRun> block_status(Blob& blob, uint64_t offset, uint64_t length, size_t max_runs);

 private:
  explicit Blobstore(std::unique_ptr<Store> store);
  std::unique_ptr<Store> store_;
};

}  // namespace sluice::blob
