// Store: the blobstore's internals behind the Blobstore facade. One mutex serializes
// metadata operations (never the data path, which reads extent maps lock-free).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bdev/bdev.h"
#include "blob/blob.h"
#include "blob/format.h"
#include "blob/model.h"

namespace sluice::blob {

struct MetadataScan;

// An open blob: what the data path needs, pinned while open.
class Blob {
 public:
  BlobId id() const { return meta_->id; }
  BlobMeta& meta() { return *meta_; }

  // The freeze gate. Operations that move a blob's clusters (snapshot, inflate, decouple,
  // deallocate, merging a deleted snapshot) set `frozen` and wait for `in_flight` to drain;
  // the data path counts its requests in `in_flight` and holds new ones back while frozen.
  // Increment in_flight, then re-check frozen (both seq_cst), so neither side misses the other.
  std::atomic<uint32_t> in_flight{0};
  std::atomic<bool> frozen{false};

 private:
  friend class Store;
  explicit Blob(BlobMeta* meta) : meta_(meta) {}
  BlobMeta* meta_;
};

class Store {
 public:
  ~Store();

  static Result<std::unique_ptr<Store>> init(std::string_view bdev_name, const InitOptions& opts);
  static Result<std::unique_ptr<Store>> load(std::string_view bdev_name, const LoadOptions& opts);

  // Both super block copies lost: blob/super_rebuild.h (super_rebuild.cc).
  static Result<SuperBlock> plan_super_rebuild(std::string_view bdev_name, uint32_t cluster_size);
  static Status write_rebuilt_super(std::string_view bdev_name, const SuperBlock& sb);
  static bool checkpoint_survives(std::string_view bdev_name);
  Status unload();
  void abandon();

  // ---- metadata operations (ops.cc, clones.cc); each takes mu_ ----
  Result<BlobId> create(const CreateOptions& opts);
  Status resize(BlobId id, uint64_t size);
  Status remove(BlobId id);
  Status set_xattr(BlobId id, std::string_view name, std::string_view value, bool internal);
  Result<std::string> get_xattr(BlobId id, std::string_view name, bool internal);
  Status remove_xattr(BlobId id, std::string_view name, bool internal);
  Status set_read_only(BlobId id);
  Result<BlobId> snapshot(BlobId id, const std::map<std::string, std::string>& xattrs);
  Result<BlobId> clone(BlobId snapshot_id, const std::map<std::string, std::string>& xattrs);
  Status inflate(BlobId id);
  Status decouple(BlobId id);
  Status set_super_blob(BlobId id);
  Result<BlobId> super_blob();
  std::vector<BlobId> list();
  Result<BlobInfo> info(BlobId id);
  Result<std::vector<ClusterRun>> cluster_runs(BlobId id);
  StoreInfo store_info();
  uint64_t checkpoint_pages_needed();
  Status sync_md();
  Status push_md();
  Result<std::shared_ptr<Blob>> open(BlobId id);
  Status close(std::shared_ptr<Blob> blob);

  // ---- for the data path (io.cc) ----
  bdev::BdevDesc& desc() { return *desc_; }
  // True once unload() or abandon() closed the device handle: channels other threads still
  // held were handed to them (release_device), and go back without it (blob_channel.cc).
  bool device_released() const { return device_released_.load(std::memory_order_acquire); }
  const SuperBlock& super() const { return sb_; }
  uint32_t io_units_per_cluster() const { return sb_.cluster_size / sb_.io_unit; }
  // The device LBA (in bdev blocks) where a device cluster starts.
  uint64_t cluster_lba(uint32_t cluster) const;
  // Gives blob cluster `index` a device cluster for a first write: a zeroed one for a thin
  // blob, or a copy of the ancestor's for a clone. Blocks the calling thread for the copy
  // (it polls that thread's channel): not for the data path, which uses try_allocate().
  // Returns the device cluster + 1.
  Result<uint32_t> allocate_for_write(Blob& blob, uint64_t index);
  // The device cluster + 1 that blob cluster `index` reads from, following parents; 0 reads
  // as zeroes.
  uint32_t resolve_read(const BlobMeta& meta, uint64_t index);
  // Drops whole clusters of a thin blob (unmap); they are zeroed before reuse.
  Status deallocate(Blob& blob, uint64_t first, uint64_t count);

  // ---- first-write allocation for the data path (io_alloc.cc) ----
  // These never wait: they take mu_ with try_lock and answer `retry`, so a data-path thread
  // (which may hold Blob::in_flight of other requests) never blocks on a metadata operation
  // that is waiting for that count to drain. They do no I/O unless `may_do_io` (a reserve
  // refill commits through the calling thread's channel, so the data path allows it only from
  // its poll, never from a submit).
  enum class AllocState : uint8_t {
    done,       // the cluster is allocated (or just was: a clean one, nothing to copy)
    copy,       // fill grant.cluster from grant.src_plus1, then call finish_copy()
    retry,      // try again later (lock taken, refill needs I/O, or a copy not allowed now)
    copying,    // another request is copying this cluster: retry once alloc_epoch() != grant.epoch
  };
  struct AllocGrant {
    uint32_t cluster = 0;    // copy: reserved device cluster, unpublished until finish_copy()
    uint32_t src_plus1 = 0;  // copy: the ancestor's device cluster + 1
    uint64_t epoch = 0;      // copying: alloc_epoch() when the other copy was seen
    bool allocated = false;  // done: this call allocated the cluster (not another request)
  };
  // Gives blob cluster `index` a device cluster for a first write. `whole` says the caller
  // overwrites all of it with zeroes, so no copy is needed. A copy is handed out (and recorded,
  // so no other request copies the same cluster) only when `allow_copy`.
  Result<AllocState> try_allocate(Blob& blob, uint64_t index, bool whole, bool allow_copy, bool may_do_io,
                                  AllocGrant* grant);
  // Ends a copy from try_allocate: publishes the cluster when the copy succeeded and the blob
  // still reads that index from grant.src_plus1; otherwise the cluster is zeroed before reuse.
  // Errc::busy: mu_ is taken, call again later.
  Status finish_copy(Blob& blob, uint64_t index, const AllocGrant& grant, bool copied);
  // Changes whenever a copy started by try_allocate ends.
  uint64_t alloc_epoch() const { return alloc_epoch_.load(std::memory_order_acquire); }

  // Consistency check of the loaded state (fsck); lists every problem found.
  std::vector<std::string> check();

 private:
  Store() = default;

  // All of the following expect mu_ held.
  Status open_device(std::string_view bdev_name, bool write);
  // Where init puts each region: sb.cluster_size and sb.device_pages set, the rest computed.
  static Status compute_layout(SuperBlock& sb, uint64_t device_bytes, uint64_t checkpoint_bytes,
                               uint64_t journal_bytes, std::string_view bdev_name);
  bool checkpoint_survives();  // expects the device open
  Status apply(const Record& r);  // apply to the model and queue for the next commit
  // Group commit of everything pending (commit.cc). Not durable: the journal batch is written
  // but not FLUSHed (it survives the process, not a power cut); the next durable commit
  // FLUSHes it.
  Status commit(bool durable = true);
  Status clean_freed();           // zero what durable batches freed, then record CLEAN
  Status write_checkpoint();      // checkpoint.cc
  Status write_super();
  Status recover(const MetadataScan& scan, bool read_only);  // recovery.cc
  Status zero_clusters(const std::vector<uint32_t>& clusters);   // I/O and FLUSH only
  Status clean_clusters(const std::vector<uint32_t>& clusters);  // zero, then record CLEAN
  uint64_t journal_used() const { return next_seq_ - sb_.journal_head_seq; }
  Result<uint32_t> take_cluster();  // from the reserved pool, refilling it with a commit
  Status reserve_clusters(uint64_t want);
  Status copy_cluster(uint32_t from_plus1, uint32_t to);
  Status io_pages(bool write, uint64_t page, char* buf, uint64_t pages);
  Status flush();
  // Closes the device handle. Channels other threads still hold become theirs alone: such a
  // thread may stay idle for good (an application's pool thread), and puts its channel back
  // at the latest when it exits, which needs no handle.
  void release_device();
  BlobMeta* find_blob(BlobId id, Status* st);
  Result<BlobId> new_blob_id() const;  // the id the next created blob takes
  // Freezes I/O to `id` if it is open and waits (bounded) for requests in flight to finish.
  // The returned guard thaws it.
  class Freeze;
  Result<std::shared_ptr<Freeze>> freeze(BlobId id);

  std::mutex mu_;
  std::unique_ptr<bdev::BdevDesc> desc_;
  std::atomic<bool> device_released_{false};
  bool read_only_ = false;
  bool recovered_ = false;
  uint32_t blocks_per_page_ = 0;
  SuperBlock sb_;
  int super_copy_ = 0;  // the copy holding the newest generation
  std::unique_ptr<Model> model_;

  std::vector<Record> pending_;    // applied, not yet durable
  bool pending_copies_ = false;    // pending extents point at copied data: FLUSH before commit
  std::vector<uint32_t> freed_;    // released by records not yet durable: zero after they are
  bool unflushed_ = false;         // journal batches written by push_md() and not yet FLUSHed
  std::vector<uint32_t> reserved_; // durable DIRTY, unowned: ready to hand out
  uint32_t alloc_cursor_ = 0;
  uint64_t next_seq_ = 0;          // sequence of the next journal page
  std::unordered_map<BlobId, std::weak_ptr<Blob>> open_;
  struct PendingCopy {
    BlobId blob;
    uint64_t index;
  };
  std::vector<PendingCopy> copies_;  // data-path copies in progress (try_allocate)
  std::atomic<uint64_t> alloc_epoch_{0};
  std::unique_ptr<char, void (*)(void*)> scratch_{nullptr, free};  // one cluster, for copies
};

}  // namespace sluice::blob
