// Write buffers kept for reuse by the next file opened for writing.
//
// A database opens a new file for every WAL, flush and compaction output. A fresh write
// buffer is a new tmpfs file: open, truncate, map, and a page fault for every 4 KiB the
// appends first touch, then unmap and unlink at close. In a virtual machine those faults are
// the most expensive part of writing a table file (measured with RocksDB's readwhilewriting:
// about a fifth of the flush and compaction threads' time). A closed file's buffer is instead
// emptied and renamed to an idle name (WriteBuffer::idle), and the next file takes it with
// its pages still mapped (WriteBuffer::assign).
//
// Every write buffer of a mount comes from its pool, which also sets their size. Only
// buffers that outlive the process are kept: one in plain memory costs no more than the
// allocator's reuse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/status.h"
#include "fs/write_buffer.h"

namespace sluice::fs {

class WriteBufferPool {
 public:
  // Buffers for a device of `block_size` and buffer alignment `buf_align`, in `dir` (null:
  // in memory, nothing kept); at most kMaxIdle are kept.
  WriteBufferPool(const BufferDir* dir, uint32_t block_size, uint32_t buf_align);
  ~WriteBufferPool();  // idle buffers are unmapped and their files removed

  // A buffer for `blob`, idle or new.
  Result<std::unique_ptr<WriteBuffer>> take(uint64_t blob);
  // The file of the buffer's blob is closed with everything on the device: keep the buffer
  // for the next one (or drop it, if the pool is full or it cannot be renamed).
  void give_back(std::unique_ptr<WriteBuffer> buf);

  // Appended bytes a buffer collects before they must go to the device (1 MiB, whole
  // blocks). Its data area is two blocks larger, for the tail block and its marker.
  size_t append_capacity() const { return append_capacity_; }
  size_t idle_count();

  // The files a database writes at once: its WAL, a flush and compaction outputs, MANIFEST.
  static constexpr size_t kMaxIdle = 8;

 private:
  const BufferDir* const dir_;
  const uint32_t block_size_;
  const size_t append_capacity_, align_;
  std::mutex mu_;
  std::vector<std::unique_ptr<WriteBuffer>> idle_;
  uint64_t next_idle_name_ = 0;
};

}  // namespace sluice::fs
