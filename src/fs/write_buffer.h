// Write buffers that outlive the process (docs/format/write-buffer.md).
//
// A file's appends wait in its write buffer until a sync, a close or a full buffer writes
// them to the device. On a kernel filesystem they would wait in the page cache, which
// survives the death of the writing process, and RocksDB's WriteOptions::sync = false relies
// on exactly that: a killed process loses nothing, only a machine crash may. So a SluiceFS
// write buffer is a file in a RAM-backed directory (tmpfs, /dev/shm by default) mapped
// shared into the process: when the process dies the kernel keeps its pages, and the next
// read-write mount of the store writes what they hold into the file (replay.cc). A machine
// crash or power cut empties the directory, exactly as it empties the page cache.
//
// - BufferDir is the directory of one store (named after its UUID), locked while a
//   read-write mount uses it, so two mounts of copies of one image never share it.
// - WriteBuffer is one file's buffer. Its header says which file bytes the data area holds,
//   [start, end); changing it is ordered so that a process that dies between any two
//   instructions leaves a header that describes valid bytes.
// - Without a directory (none configured, or it cannot be used) the buffer is plain memory:
//   the file system works as before and a process crash loses unsynced appends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "fs/fs.h"

namespace sluice::fs {

class BufferDir {
 public:
  // Opens (creating it, mode 0700) `root`/`store_id` and locks it. Errc::busy if another
  // live mount holds it.
  static Result<std::unique_ptr<BufferDir>> open(const std::string& root, const std::string& store_id);
  ~BufferDir();  // unlocks; removes the directory if it is empty

  const std::string& path() const { return path_; }
  const std::string& store_id() const { return store_id_; }
  std::string file_of(uint64_t blob) const;
  // The name of idle buffer number `n` (write_buffer_pool.h). Idle files hold nothing; open()
  // removes those a process that died left behind.
  std::string idle_file(uint64_t n) const;
  // The blob ids of the buffers left in the directory (by a process that died), as open()
  // found them.
  const std::vector<uint64_t>& leftovers() const { return leftovers_; }

 private:
  BufferDir(std::string path, std::string store_id, int fd) : path_(std::move(path)), store_id_(std::move(store_id)), fd_(fd) {}
  std::string path_;
  std::string store_id_;
  int fd_ = -1;
  std::vector<uint64_t> leftovers_;
};

// What a buffer left behind by a dead process holds.
struct BufferImage {
  uint64_t blob = 0;
  uint32_t block_size = 0;
  uint64_t start = 0;       // file offset of data[0]
  std::string data;         // file bytes [start, start + data.size())
};
// Reads the buffer of `blob` in `dir`: Errc::not_found if there is none, Errc::corrupt if it
// is not a buffer of this store.
Result<BufferImage> read_leftover(const BufferDir& dir, uint64_t blob);

class WriteBuffer {
 public:
  // A buffer of `capacity` data bytes, aligned to `align`, for blob `blob`: in `dir` when it
  // is not null (falling back to memory, with a warning, if the file cannot be made).
  static Result<std::unique_ptr<WriteBuffer>> create(const BufferDir* dir, uint64_t blob, uint32_t block_size,
                                                     size_t capacity, size_t align);
  ~WriteBuffer();  // unmaps and removes the file, unless keep() was called

  char* data() { return data_; }
  const char* data() const { return data_; }
  bool survives_process() const { return fd_ >= 0; }

  // The data area now holds file bytes [start(), end): end only grows between rebases.
  void set_end(uint64_t end);
  // The data area is about to hold bytes from `start` on: the header first says "nothing"
  // (end 0), then names the new start; the caller then fills the area and calls set_end().
  void rebase(uint64_t start);
  // Leaves the file in place at destruction (the device failed: a later mount may replay it).
  void keep() { keep_ = true; }

  // Reuse (write_buffer_pool.h). idle(): the buffer is emptied (end 0), then its file is
  // renamed to `idle_path`, a name replay ignores. assign(): the header names `blob`, then
  // the file is renamed to that blob's name. False if the rename failed: drop the buffer.
  // A process that dies anywhere in between leaves either an empty buffer or an idle file.
  bool idle(const std::string& idle_path);
  bool assign(uint64_t blob, const std::string& path);

 private:
  WriteBuffer() = default;
  uint64_t* header_field(size_t offset);

  char* map_ = nullptr;      // header page + data (a file mapping or heap memory)
  size_t map_bytes_ = 0;
  char* data_ = nullptr;
  int fd_ = -1;
  std::string path_;
  bool keep_ = false;
};

}  // namespace sluice::fs
