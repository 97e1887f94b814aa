// SluiceFS: a small filesystem for RocksDB on the blobstore (docs/format/sluicefs.md).
//
//   fs::FileSystem::format("uring:/dev/loop0");
//   auto fs = fs::FileSystem::mount("uring:/dev/loop0");     // device spec, as `sluice perf -T`
//   (*fs)->mkdirs("/db1");
//   auto f = (*fs)->open("/db1/000001.log", {.write = true, .create = true, .truncate = true});
//   (*f)->append(buf, n); (*f)->sync();                       // one data write + one FLUSH
//
// - Paths are absolute, '/'-separated, normalized ("//" and a trailing '/' are accepted);
//   a name is 1..255 bytes without '/' or NUL. Lookup is hashed per directory.
// - Every method may be called from any thread. A File handle is used by one thread at a
//   time (as RocksDB does); distinct handles, even of one file, are independent. Data I/O
//   runs on the calling thread's own blobstore channel, polled by that thread: no hop to
//   another thread, no lock shared between files on the data path. A thread keeps its
//   channel until it exits; one still alive at unmount keeps it (a small, logged leak).
// - The shared state of the data path is one mutex per file (its write buffer) and, when
//   enabled, the read cache's 16 shards.
// - Namespace changes (create, mkdir, rename, unlink, truncate, allocation) are applied in
//   memory at once and become durable, atomically and in order, at the next sync_dir() or
//   File::sync() of any file (group commit through the blobstore journal). rename() replaces
//   an existing file target atomically. An unlinked file stays readable through handles
//   opened before, and its space returns when the last one closes (or at the next mount).
// - Two crash models (docs/design.md). Process death (a kill, an OOM, a bug): everything
//   written through this API survives, synced or not: namespace changes reach the device's
//   journal before the call returns, and appends wait in write buffers that outlive the
//   process (MountOptions::write_buffer_dir). Power loss: only what was synced survives.
// - File::sync() makes the file's data and size durable. For appends into space the file
//   already owns (files preallocate), it costs one data write plus one FLUSH: the size is
//   recovered at mount from self-describing appends, not written as metadata.
// - Reads: aligned requests go straight into the caller's buffer; others through the
//   calling thread's bounce buffer, a per-handle read-ahead window once a handle reads
//   sequentially (MountOptions::readahead_bytes), or the shared read cache
//   (MountOptions::read_cache_bytes). FsStat counts each kind.
// - Errors: Errc::not_found (missing path), exists, invalid_argument (bad name or path,
//   writing a read-only handle), not_a_directory, is_a_directory, not_empty (rmdir, rename
//   over a directory), name_too_long, no_space, corrupt (a damaged image), wrong_format
//   (mount: the device holds no SluiceFS image), io_error. Messages name the path.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::fs {

struct FormatOptions {
  uint32_t cluster_size = 1u << 20;  // the blobstore's allocation unit, bytes
  // Format a device that is not blank (blob/probe.h), destroying what it holds. Without it,
  // format refuses such a device with Errc::exists, naming what is there.
  bool force = false;
};

// The name under which SluiceFS recognizes its images in a device probe (blob/probe.h:
// Probe::owner), and the registration that makes probes name them (done by format; a program
// that probes without ever formatting SluiceFS calls it itself).
inline constexpr std::string_view kProbeOwner = "sluicefs";
void register_probe_owner();

// Where write buffers go unless MountOptions says otherwise: $SLUICE_WRITE_BUFFER_DIR if
// set (empty: none), else /dev/shm/sluice if /dev/shm exists, else none.
std::string default_write_buffer_dir();

struct MountOptions {
  bool read_only = false;             // inspect only: no recovery writes, no changes
  uint64_t read_cache_bytes = 0;      // buffered-read cache shared by all files; 0 = none
  uint64_t readahead_bytes = 1u << 20;  // per sequential reader; 0 = off
  // A RAM-backed (tmpfs) directory for the files' write buffers, so that appends not yet
  // synced survive the death of the process, as they would in a kernel's page cache; the
  // next read-write mount writes them into their files. Empty: plain memory (a process
  // crash then loses what was not synced). One subdirectory per store, named by its UUID.
  std::string write_buffer_dir = default_write_buffer_dir();
  // Free space that ordinary file growth may not take, so that a database that filled the
  // device can still be reopened (its new small files, the flush of its recovered WALs) and
  // compacted (docs/format/sluicefs.md, "The free-space reserve"). Unset: 1/32 of the device
  // in [8 MiB, 256 MiB]; at most a quarter of the device either way. 0 turns it off.
  std::optional<uint64_t> reserve_bytes;
};

struct FileStat {
  uint64_t size = 0;            // bytes
  uint64_t allocated = 0;       // bytes of device space the file owns
  int64_t mtime_ns = 0;         // wall clock, nanoseconds since the epoch
  bool directory = false;
  uint64_t id = 0;              // stable while the file exists (its blob id)
};

struct FsStat {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;      // what files can still grow into: the reserve is not in it
  uint64_t reserved_bytes = 0;  // free but held back as the reserve (MountOptions::reserve_bytes)
  uint64_t files = 0;
  uint64_t directories = 0;
  uint32_t block_size = 0;      // the device's I/O unit: direct reads align to it
  uint32_t cluster_size = 0;
  // Counters since mount (docs/design.md rule 6).
  uint64_t direct_reads = 0;    // device reads straight into the caller's buffer
  uint64_t bounced_reads = 0;   // device reads through a bounce or read-ahead buffer
  uint64_t readahead_fills = 0;
  uint64_t cache_hits = 0;      // read-cache chunks found
  uint64_t cache_misses = 0;
  uint64_t syncs = 0;           // tail writes (a sync, a close, or a full write buffer)
  uint64_t two_phase_syncs = 0; // of those, tails that crossed out of the marker's block
  uint64_t commits = 0;         // namespace group commits (journal write + FLUSH)
};

// What FileSystem::check() found (fsck). Empty `problems`: the namespace is consistent.
struct CheckReport {
  std::vector<std::string> problems;
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t orphans = 0;  // unlinked-while-open files awaiting collection (not a problem)
  bool ok() const { return problems.empty(); }
};

struct OpenOptions {
  bool write = false;      // open for append/pwrite/truncate
  bool create = false;     // create if missing (needs write)
  bool exclusive = false;  // with create: fail with Errc::exists if it exists
  bool truncate = false;   // with write: start empty
  // With write and a read cache: bytes this handle makes stable go into the cache, as a
  // page cache keeps written pages (for files read back soon, such as a database's tables).
  bool cache_writes = false;
};

// One read of a batch (File::read_batch): like a RocksDB FSReadRequest.
struct ReadRequest {
  uint64_t offset = 0;
  size_t length = 0;
  char* buf = nullptr;     // caller's buffer, at least `length` bytes
  size_t result = 0;       // bytes read (short at end of file)
  Status status;
};

class File {
 public:
  virtual ~File() = default;

  // Reads up to n bytes at offset; returns the count (0 at or past end of file).
  // Aligned requests (offset, length and buf at FsStat::block_size) go straight from the
  // device into buf; others go through a bounce buffer or the read cache.
  virtual Result<size_t> pread(void* buf, size_t n, uint64_t offset) = 0;
  // Submits every request before waiting for any, then completes them all.
  virtual Status read_batch(ReadRequest* reqs, size_t count) = 0;
  // Starts one read and returns at once; `done` runs on this thread inside poll() or
  // wait_all() of this handle.
  virtual Status read_async(ReadRequest* req, std::function<void(ReadRequest&)> done) = 0;
  virtual int poll() = 0;         // completes finished async reads, returns how many
  virtual Status wait_all() = 0;  // completes every async read of this handle

  virtual Status append(const void* data, size_t n) = 0;
  virtual Status pwrite(const void* data, size_t n, uint64_t offset) = 0;
  // Makes buffered appends visible to other handles and safe from a process crash (not yet
  // from a power cut). In SluiceFS append() already did both (the write buffer belongs to the
  // file and outlives the process), so this does no I/O.
  virtual Status flush() = 0;
  virtual Status sync() = 0;  // data, size and pending namespace changes durable
  virtual Status truncate(uint64_t size) = 0;
  virtual Status preallocate(uint64_t bytes) = 0;  // reserve space up to `bytes` from offset 0
  virtual uint64_t size() const = 0;
  virtual uint64_t id() const = 0;
  // Syncs nothing; releases the handle. Further calls fail. The destructor closes too.
  virtual Status close() = 0;
};

// A lock held on a path (RocksDB's LOCK file); released by unlock() or destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  // Formats `device` (a bdev spec or a registered bdev's name) as an empty SluiceFS. Only a
  // blank device unless opts.force: anything else (another store, a filesystem, data) is
  // refused with Errc::exists and a message that names it.
  static Status format(std::string_view device, const FormatOptions& opts = {});
  // Mounts it, recovering after a crash. Errors name the device and what is wrong
  // (not found, not a SluiceFS image, newer format version, damaged).
  static Result<std::unique_ptr<FileSystem>> mount(std::string_view device, const MountOptions& opts = {});
  virtual ~FileSystem() = default;  // unmounts if unmount() was not called

  // Makes everything durable, writes a clean checkpoint and releases the device. Open
  // handles must be closed first (Errc::busy otherwise).
  virtual Status unmount() = 0;
  // Releases the device writing nothing, as if the process had died here: the next mount
  // recovers. For crash tests and for giving up on a failed device. Handles must be closed.
  virtual void abandon() {}

  virtual Result<std::unique_ptr<File>> open(std::string_view path, const OpenOptions& opts) = 0;
  virtual Status mkdir(std::string_view path) = 0;   // Errc::exists if it does
  virtual Status mkdirs(std::string_view path) = 0;  // like mkdir -p
  virtual Status rmdir(std::string_view path) = 0;   // the directory must be empty
  virtual Status unlink(std::string_view path) = 0;
  virtual Status rename(std::string_view from, std::string_view to) = 0;
  virtual Result<std::vector<std::string>> list(std::string_view dir) = 0;  // names, sorted
  virtual Result<FileStat> stat(std::string_view path) = 0;
  virtual Status truncate(std::string_view path, uint64_t size) = 0;
  virtual Status sync_dir(std::string_view dir) = 0;  // makes namespace changes durable
  virtual Result<std::unique_ptr<FileLock>> lock(std::string_view path) = 0;  // busy if held
  virtual FsStat statfs() = 0;
  virtual std::string device() const = 0;  // the bdev name it is mounted on
  // fsck: every blob belongs to exactly one path (or is an orphan to collect), names are
  // valid and unique per directory, sizes lie within the allocation, the root is sound.
  virtual Result<CheckReport> check() { return Status(Errc::not_supported, "check() is not implemented"); }
};

}  // namespace sluice::fs
