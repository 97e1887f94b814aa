// RocksDB's file interfaces over SluiceFS handles (fs::File). Each file object keeps the
// mount alive, so a file may outlive the FileSystem object that opened it.
#pragma once

#include <memory>
#include <string>

#include <rocksdb/file_system.h>

#include "rocksdb/sluice_mounts.h"

namespace sluice::rocksdb_plugin {

// Opening options shared by every file kind.
struct FileContext {
  std::shared_ptr<Mount> mount;
  std::string path;      // SluiceFS path
  bool direct = false;   // use_direct_io(): aligned buffers, offsets and lengths
};

std::unique_ptr<::rocksdb::FSWritableFile> make_writable_file(FileContext ctx, std::unique_ptr<fs::File> file,
                                                               const ::rocksdb::FileOptions& opts);
std::unique_ptr<::rocksdb::FSSequentialFile> make_sequential_file(FileContext ctx, std::unique_ptr<fs::File> file);
std::unique_ptr<::rocksdb::FSRandomAccessFile> make_random_access_file(FileContext ctx, std::unique_ptr<fs::File> file);
std::unique_ptr<::rocksdb::FSRandomRWFile> make_random_rw_file(FileContext ctx, std::unique_ptr<fs::File> file);

// Reads until n bytes or end of file; *got is what was read.
::rocksdb::IOStatus read_fully(fs::File& file, uint64_t offset, size_t n, char* scratch, size_t* got);

// FileSystem::Poll and AbortIO for handles made by the random access file's ReadAsync.
::rocksdb::IOStatus poll_async_reads(std::vector<void*>& io_handles);
::rocksdb::IOStatus abort_async_reads(std::vector<void*>& io_handles);

}  // namespace sluice::rocksdb_plugin
