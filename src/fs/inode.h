// The in-memory namespace: one Inode per blob (file or directory).
//
// Locking (docs/design.md: no lock shared between files on the data path):
// - FsCore::md_mu_ guards the namespace (names, children, open counts, the persisted state)
//   and every blobstore metadata call.
// - Inode::mu guards one file's data-path state (length, write buffer). Order: Inode::mu
//   before md_mu_, never the reverse.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "blob/blob.h"
#include "fs/format.h"
#include "fs/write_buffer.h"

namespace sluice::fs {

// A file's append state while some handle has it open for writing (under Inode::mu).
//
// Bytes [0, durable) are on the device and durable; bytes [floor(durable), len) are in
// `buf` (the first block is the partial block the next sync rewrites). See tail.cc.
struct WriteState {
  std::unique_ptr<WriteBuffer> buf;  // outlives the process (write_buffer.h)
  size_t cap = 0;          // data bytes buf holds before it must be pushed to the device
  uint64_t durable = 0;    // synced length
  uint64_t gen = 1;        // generation the markers extend (of the last size record set)
  uint64_t base = 0;       // crc covers [base, len)
  uint32_t crc = 0;
  bool unflushed = false;   // overwrites went to the device since the last FLUSH
  bool tail_dirty = false;  // bytes below len in the buffer changed (pwrite): rewrite them
  int writers = 0;         // handles open for writing
};

struct Inode {
  const uint64_t id;
  Kind kind;
  // ---- namespace (md_mu_) ----
  uint64_t parent = 0;
  std::string name;
  bool orphan = false;  // unlinked or replaced while open: removed at last close
  std::unordered_map<std::string, uint64_t> children;  // directories: hashed lookup
  InodeState persisted;  // the last state record set (maybe not yet durable)
  int opens = 0;
  std::shared_ptr<blob::Blob> blob;  // while opens > 0

  // ---- set under md_mu_, read lock-free by the data path ----
  std::atomic<uint64_t> committed_size{0};  // size of the durable state record
  std::atomic<bool> state_pending{false};
  std::atomic<uint64_t> allocated{0};  // bytes the blob owns (changed under mu and md_mu_)
  std::atomic<uint64_t> cache_epoch{0};  // bumped when bytes change in place (read_cache.h)

  // ---- data path (mu) ----
  std::mutex mu;
  uint64_t len = 0;
  int64_t mtime_ns = 0;
  std::unique_ptr<WriteState> ws;

  Inode(uint64_t i, Kind k) : id(i), kind(k) {}
  bool is_dir() const { return kind == Kind::dir; }
};

}  // namespace sluice::fs
