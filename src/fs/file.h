// FileHandle: one open File. Reads go straight from the device into the caller's buffer
// when aligned, through a bounce buffer (with read-ahead for sequential readers) otherwise;
// appends collect in the inode's write buffer and reach the device at sync (tail.cc).
#pragma once

#include <deque>
#include <functional>
#include <memory>

#include "fs/fs.h"
#include "fs/fs_core.h"
#include "fs/inode.h"

namespace sluice::fs {

// The calling thread's bounce buffer (at least `bytes`, aligned for the device); null when
// memory is short. Valid until the thread's next call.
char* thread_scratch(size_t bytes, size_t align);

class FileHandle final : public File {
 public:
  FileHandle(FsCore& fs, std::shared_ptr<Inode> ino, bool writable, bool cache_writes = false);
  ~FileHandle() override;

  // Called once after construction of a writable handle: sets up the shared write state.
  Status begin_write();

  Result<size_t> pread(void* buf, size_t n, uint64_t offset) override;
  Status read_batch(ReadRequest* reqs, size_t count) override;
  Status read_async(ReadRequest* req, std::function<void(ReadRequest&)> done) override;
  int poll() override;
  Status wait_all() override;

  Status append(const void* data, size_t n) override;
  Status pwrite(const void* data, size_t n, uint64_t offset) override;
  Status flush() override;
  Status sync() override;
  Status truncate(uint64_t size) override;
  Status preallocate(uint64_t bytes) override;
  uint64_t size() const override;
  uint64_t id() const override { return ino_->id; }
  Status close() override;

 private:
  struct Async;
  Status check_open(bool write) const;
  // Reads file bytes [off, off+n) that lie on the device (below the write buffer).
  Status read_device(char* dst, uint64_t off, size_t n, uint64_t dev_limit, blob::BlobChannel* ch);
  // Copies what the pending write buffer holds of [off, off+n); returns the device limit.
  uint64_t snapshot(char* dst, uint64_t off, size_t n, uint64_t* len);

  // tail.cc: the write protocol (Inode::mu held).
  Status append_locked(const char* data, size_t n, blob::BlobChannel* ch);
  Status write_tail_locked(blob::BlobChannel* ch);  // [durable, len) to the device, durable
  Status sync_locked(blob::BlobChannel* ch);
  Status rebase_locked(blob::BlobChannel* ch);      // size record := len (all synced)
  Status truncate_locked(uint64_t size, blob::BlobChannel* ch);
  Status overwrite_locked(const char* data, size_t n, uint64_t off, blob::BlobChannel* ch);
  Status load_tail_block_locked(blob::BlobChannel* ch);
  Status end_write_locked(blob::BlobChannel* ch);

  FsCore& fs_;
  std::shared_ptr<Inode> ino_;
  const bool writable_;
  const bool cache_writes_;  // OpenOptions::cache_writes
  bool closed_ = false;
  // Read-ahead for sequential readers: a window of the file, filled once a handle has read
  // sequentially a few times (random readers never get one, so pooled handles stay small).
  std::unique_ptr<char, void (*)(void*)> ra_buf_{nullptr, free};
  size_t ra_cap_ = 0;
  uint64_t ra_off_ = 0;
  size_t ra_len_ = 0;
  uint64_t ra_epoch_ = 0;
  uint64_t last_end_ = UINT64_MAX;  // where the previous read ended
  int seq_run_ = 0;                 // consecutive sequential reads
  std::deque<std::unique_ptr<Async>> async_;
};

}  // namespace sluice::fs
