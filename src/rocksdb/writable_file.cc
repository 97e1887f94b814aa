// FSWritableFile over a SluiceFS handle. RocksDB's WritableFileWriter buffers appends, so
// every call here goes straight to the handle.
#include "rocksdb/sluice_files.h"
#include "rocksdb/sluice_io_status.h"

namespace sluice::rocksdb_plugin {
namespace {

using ::rocksdb::IODebugContext;
using ::rocksdb::IOOptions;
using ::rocksdb::IOStatus;
using ::rocksdb::Slice;

class SluiceWritableFile final : public ::rocksdb::FSWritableFile {
 public:
  SluiceWritableFile(FileContext ctx, std::unique_ptr<fs::File> file, const ::rocksdb::FileOptions& opts)
      : ::rocksdb::FSWritableFile(opts), ctx_(std::move(ctx)), file_(std::move(file)) {}

  IOStatus Append(const Slice& data, const IOOptions&, IODebugContext*) override {
    return to_io_status(file_->append(data.data(), data.size()));
  }
  IOStatus Append(const Slice& data, const IOOptions&, const ::rocksdb::DataVerificationInfo&,
                  IODebugContext*) override {
    return to_io_status(file_->append(data.data(), data.size()));
  }
  // Direct writes: RocksDB rewrites the last partial block and trims the file at Close.
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions&, IODebugContext*) override {
    return to_io_status(file_->pwrite(data.data(), data.size(), offset));
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions&,
                            const ::rocksdb::DataVerificationInfo&, IODebugContext*) override {
    return to_io_status(file_->pwrite(data.data(), data.size(), offset));
  }
  IOStatus Truncate(uint64_t size, const IOOptions&, IODebugContext*) override {
    return to_io_status(file_->truncate(size));
  }
  IOStatus Close(const IOOptions&, IODebugContext*) override {
    if (closed_) return IOStatus::OK();
    closed_ = true;
    return to_io_status(file_->close());
  }
  IOStatus Flush(const IOOptions&, IODebugContext*) override { return to_io_status(file_->flush()); }
  IOStatus Sync(const IOOptions&, IODebugContext*) override { return to_io_status(file_->sync()); }
  IOStatus Fsync(const IOOptions&, IODebugContext*) override { return to_io_status(file_->sync()); }
  // bytes_per_sync asks for early write-back, not durability: push buffered appends out.
  IOStatus RangeSync(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
    return to_io_status(file_->flush());
  }
  IOStatus Allocate(uint64_t offset, uint64_t len, const IOOptions&, IODebugContext*) override {
    return to_io_status(file_->preallocate(offset + len));
  }
  uint64_t GetFileSize(const IOOptions&, IODebugContext*) override { return file_->size(); }
  bool use_direct_io() const override { return ctx_.direct; }
  size_t GetRequiredBufferAlignment() const override { return ctx_.mount->block_size(); }
  // There is no kernel page cache to drop.
  IOStatus InvalidateCache(size_t, size_t) override { return IOStatus::OK(); }

 private:
  FileContext ctx_;
  std::unique_ptr<fs::File> file_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<::rocksdb::FSWritableFile> make_writable_file(FileContext ctx, std::unique_ptr<fs::File> file,
                                                               const ::rocksdb::FileOptions& opts) {
  return std::make_unique<SluiceWritableFile>(std::move(ctx), std::move(file), opts);
}

}  // namespace sluice::rocksdb_plugin
