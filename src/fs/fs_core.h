// FsCore: the mounted file system (FileSystem's implementation). Namespace operations live
// in namespace.cc, state records and commits in commit.cc, mounting and recovery in mount.cc,
// write-buffer replay in replay.cc, fsck in check.cc; files in file.h.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "blob/blob.h"
#include "fs/channels.h"
#include "fs/fs.h"
#include "fs/inode.h"
#include "fs/read_cache.h"
#include "fs/write_buffer.h"
#include "fs/write_buffer_pool.h"

namespace sluice::fs {

// Commit the size record once the synced length runs this far past it, so recovery never
// scans more than this (plus two blocks) of any file's tail.
inline constexpr uint64_t kSizeCommitEvery = 4u << 20;
// Preallocation steps: the allocation grows by itself (at least 1 MiB, at most 64 MiB).
inline constexpr uint64_t kMinGrow = 1u << 20;
inline constexpr uint64_t kMaxGrow = 64u << 20;

class FsCore final : public FileSystem {
 public:
  static Result<std::unique_ptr<FileSystem>> mount_device(std::string_view device, const MountOptions& opts);
  ~FsCore() override;

  Status unmount() override;
  void abandon() override;
  Result<std::unique_ptr<File>> open(std::string_view path, const OpenOptions& opts) override;
  Status mkdir(std::string_view path) override;
  Status mkdirs(std::string_view path) override;
  Status rmdir(std::string_view path) override;
  Status unlink(std::string_view path) override;
  Status rename(std::string_view from, std::string_view to) override;
  Result<std::vector<std::string>> list(std::string_view dir) override;
  Result<FileStat> stat(std::string_view path) override;
  Status truncate(std::string_view path, uint64_t size) override;
  Status sync_dir(std::string_view dir) override;
  Result<std::unique_ptr<FileLock>> lock(std::string_view path) override;
  FsStat statfs() override;
  std::string device() const override { return device_; }
  Result<CheckReport> check() override;

  // ---- for files (file.cc, tail.cc) ----
  blob::Blobstore& bs() { return *bs_; }
  ChannelSource& channels() { return *channels_; }
  uint32_t block() const { return block_; }
  uint32_t cluster() const { return cluster_; }
  bool read_only() const { return opts_.read_only; }
  const MountOptions& options() const { return opts_; }
  // Namespace changes applied since the last commit (read lock-free by File::sync).
  bool md_dirty() const { return md_dirty_.load(std::memory_order_acquire) != 0; }
  // Grows the file's allocation to at least `bytes` (in preallocation steps unless exact).
  Status grow(Inode& ino, uint64_t bytes, bool exact);
  // Shrinks the allocation to what `bytes` needs (whole clusters).
  Status shrink(Inode& ino, uint64_t bytes);
  // Changes the inode's state record (durable at the next commit); returns the new state.
  Result<InodeState> update_state(Inode& ino, const std::function<void(InodeState&)>& change);
  uint32_t buf_align() const { return buf_align_; }
  // Where files opened for writing get their write buffers (in the store's buffer directory
  // once attach_write_buffers() found it, so that they outlive the process).
  WriteBufferPool& write_buffers() { return *write_buffers_; }
  ReadCache* cache() { return cache_.get(); }
  struct Counters {
    std::atomic<uint64_t> direct_reads{0}, bounced_reads{0}, readahead_fills{0}, cache_hits{0}, cache_misses{0},
        syncs{0}, two_phase_syncs{0}, commits{0};
  };
  Counters& counters() { return counters_; }
  static void count(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }
  // Makes every namespace change durable (group commit).
  Status commit();
  // A handle went away: the last one closes the blob and collects an orphan.
  void release(const std::shared_ptr<Inode>& ino);
  void unlock_path(const std::string& path);
  std::string path_of(const Inode& ino);

 private:
  friend class MountTask;
  FsCore() = default;

  // All of these expect md_mu_ held.
  Status commit_locked();
  // Resizes ino's blob to `clusters`; growth fails with no_space where it would take the
  // free-space reserve (reserve.h) and the reserve is not open to it (commit.cc says when).
  Status allocate_locked(Inode& ino, uint64_t clusters);
  // Writes every namespace change to the journal without a FLUSH: it then survives the death
  // of the process, as a kernel filesystem's metadata does, but not a power cut (the next
  // commit covers that). Every namespace operation calls it before it returns.
  Status publish_locked();
  Status set_state_locked(Inode& ino, const InodeState& st);
  Result<std::shared_ptr<Inode>> lookup_locked(std::string_view path);
  // The parent directory of `path` and the last name.
  Result<std::pair<std::shared_ptr<Inode>, std::string>> parent_locked(std::string_view path);
  Result<std::shared_ptr<Inode>> create_locked(Inode& dir, const std::string& name, Kind kind);
  // Removes `ino` from the namespace: its blob now, or at its last close if open.
  Status drop_locked(const std::shared_ptr<Inode>& ino);
  Status set_entry_locked(Inode& ino, uint64_t parent, const std::string& name);
  std::string path_locked(const Inode& ino);
  Status mkdir_locked(std::string_view path, bool exists_ok);
  // A new handle of `ino`: opens its blob with the first one (release() undoes it).
  Status add_handle_locked(Inode& ino);
  // At a read-write mount: takes the store's write-buffer directory and writes into their
  // files what buffers left by a process that died hold (replay.cc).
  Status attach_write_buffers();
  Status replay_write_buffer(const BufferDir& dir, uint64_t blob);
  // At unmount: removes the idle buffers and lets the directory go.
  void detach_write_buffers();
  // Lets go of the device: its host-file lock, then the bdev if this mount created it.
  void release_device();

  std::unique_ptr<blob::Blobstore> bs_;
  std::unique_ptr<ChannelSource> channels_;
  std::string device_;
  bool owns_bdev_ = false;
  MountOptions opts_;
  uint32_t block_ = 0;
  uint32_t cluster_ = 0;
  uint32_t buf_align_ = 1;
  uint64_t reserve_ = 0;    // clusters file growth may not take (reserve.h)
  // From a read-write mount to the first delete: a database reopening (allocate_locked).
  bool reopening_ = false;
  uint64_t reopen_taken_ = 0;  // reserve clusters growth took while reopening_
  bool replaying_ = false;  // replaying write buffers at mount: the reserve is open
  bool unmounted_ = false;

  std::mutex md_mu_;
  std::atomic<uint64_t> md_dirty_{0};
  std::unordered_map<uint64_t, std::shared_ptr<Inode>> inodes_;
  uint64_t root_ = 0;
  std::vector<std::shared_ptr<Inode>> pending_states_;
  std::atomic<int> handles_{0};

  std::unique_ptr<ReadCache> cache_;
  std::unique_ptr<BufferDir> bufdir_;
  std::unique_ptr<WriteBufferPool> write_buffers_;  // after bufdir_: its idle files go first
  Counters counters_;

  std::mutex locks_mu_;
  std::set<std::string> locks_;
};

}  // namespace sluice::fs
